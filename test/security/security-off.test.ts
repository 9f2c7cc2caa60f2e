/**
 * `SECURITY=off` (development and benchmarks; refused in production): every request runs as the
 * open principal — no credentials, nothing withheld or masked, nothing recorded.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir, { config: { security: { enabled: false } } });
});

afterAll(() => tearDown(platform, data.remove));

describe("security off", () => {
  it("answers without credentials, every field, unmasked, and records nothing", async () => {
    const { status, body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { id name hukouAddress } }`,
      {},
      {},
    );
    expect(status).toBe(200);
    expect(body).toEqual({
      data: { person: { id: ZHANG_WEI, name: "张伟", hukouAddress: "朝阳区建国路1号" } },
    });
    expect(existsSync(join(data.dir, "audit.db"))).toBe(false);
  });
});
