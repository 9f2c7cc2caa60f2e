/**
 * `npm run subgraph` refuses what would leave a department serving nothing: a data directory
 * without its database (a volume that failed to mount: it made an empty file and answered every
 * citizen "unknown", with /ready saying all was well), a file that is not a database (naming it),
 * and a port written as `hukou:`.
 */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { tempDataDir } from "./helpers.ts";

const run = promisify(execFile);
const data = tempDataDir();
afterAll(() => data.remove());

async function subgraph(...args: string[]): Promise<{ code: number; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", "scripts/subgraph.ts", ...args], {
    env: { ...process.env, DATA_DIR: data.dir, LOG_LEVEL: "warn" },
  }).then(
    () => ({ code: 0, stderr: "" }),
    (error: { code: number; stderr: string }) => error,
  );
}

describe("npm run subgraph", () => {
  it("refuses to serve a department whose database is not there, and creates none", async () => {
    const { code, stderr } = await subgraph("hukou:0", "tax:0");
    expect(code).toBe(2);
    expect(stderr).toContain(
      `hukou: could not start: no database at ${join(data.dir, "hukou.db")}`,
    );
    expect(stderr).toContain("tax: could not start: no database at");
    expect(existsSync(join(data.dir, "hukou.db"))).toBe(false);
  });

  it("names the file it cannot open", async () => {
    const corrupt = join(data.dir, "traffic.db");
    writeFileSync(corrupt, "this is a spreadsheet export, not a SQLite database\n".repeat(40));
    const { code, stderr } = await subgraph("traffic:0");
    expect(code).toBe(1);
    expect(stderr).toContain(`traffic: could not start: ${corrupt}: file is not a database`);
  });

  it("refuses a department named with an empty port", async () => {
    const { code, stderr } = await subgraph("hukou:");
    expect(code).toBe(2);
    expect(stderr).toContain("usage: npm run subgraph");
  });
});
