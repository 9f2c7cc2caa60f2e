/**
 * A job's UNDETERMINED verdicts checked again through the job API (`POST /jobs/:id/recheck`, the
 * CLI's `--only-undetermined`): social security is reached through a relay that dies and comes
 * back; the recheck asks it about those subjects only, and its results are the whole job's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDataDir } from "../helpers.ts";
import { LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";
import { type JobView, jobApi } from "./job-api.ts";
import { qualifiedMigrant, Records } from "./records.ts";

const r = new Records();
/** Decided by the household register and traffic alone. */
const beijinger = r.person();
r.licence(beijinger);
/** Needs social security's insured months. */
const migrant = qualifiedMigrant(r);

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
const social = new Relay();

beforeAll(async () => {
  data = tempDataDir();
  r.write(data.dir);
  // The breaker lets a trial call through 100 ms after it opened: social is asked again soon
  // after it is back.
  platform = await startPlatform(data.dir, { config: { breakerResetMs: 100 }, relays: { social } });
});

afterAll(() => tearDown(platform, data.remove));

const { submit, finished, results, recheck } = jobApi(() => platform);
const csv = (subjects: readonly string[]) => `id\n${subjects.join("\n")}\n`;

describe("POST /jobs/:id/recheck", { timeout: 120_000 }, () => {
  let first: JobView;
  let firstLines: string[];

  it("verifies a finished job's UNDETERMINED subjects again, asking only about them, and keeps the other lines", async () => {
    social.down();
    const submitted = await submit(csv([beijinger, migrant]));
    expect(submitted.status).toBe(202);
    first = await finished(submitted.body.id);
    const before = await results(first.id);
    firstLines = before.raw;
    expect(before.lines.map(({ outcome, unavailable }) => ({ outcome, unavailable }))).toEqual([
      { outcome: "ELIGIBLE", unavailable: [] },
      { outcome: "UNDETERMINED", unavailable: ["social"] },
    ]);

    social.up();
    await new Promise((resolve) => setTimeout(resolve, 150));
    social.clear();
    const again = await recheck(first.id);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ status: "queued", total: 2, recheckOf: first.id });
    expect(again.body.id).not.toBe(first.id);
    const view = await finished(again.body.id);
    expect(view).toMatchObject({ status: "done", done: 2 });
    expect(view.counts.byOutcome).toEqual({ ELIGIBLE: 2 });

    const { lines, raw } = await results(again.body.id);
    expect(lines.map((line) => line.subject)).toEqual([beijinger, migrant]);
    // The line that stood is copied as it was, its proof included.
    expect(raw[0]).toBe(firstLines[0]);
    expect(lines[1]).toMatchObject({ subject: migrant, outcome: "ELIGIBLE", unavailable: [] });
    // Social was asked about the migrant, never about the subject whose verdict stood.
    const asked = social.arrivals.map((arrival) => arrival.body).join("\n");
    expect(asked).toContain(migrant);
    expect(asked).not.toContain(beijinger);
    // The first job's results are as they were.
    expect((await results(first.id)).raw).toEqual(firstLines);
  });

  it("refuses a job without UNDETERMINED verdicts, and one still running", async () => {
    const settled = await submit(csv([beijinger]));
    await finished(settled.body.id);
    const nothing = await recheck(settled.body.id);
    expect(nothing.status).toBe(400);
    expect(nothing.body.errors?.[0]?.extensions.code).toBe("BAD_USER_INPUT");
    expect(nothing.body.errors?.[0]?.message).toContain("has no UNDETERMINED verdicts");

    // Twenty thousand lines take the job seconds; the recheck is asked at once.
    const long = await submit(csv(Array.from({ length: 20_000 }, () => migrant)));
    const early = await recheck(long.body.id);
    expect(early.status).toBe(409);
    expect(early.body.errors?.[0]?.message).toMatch(/is (queued|running); .* once it is done/);
    await finished(long.body.id);
  });

  it("is another desk's job: not found", async () => {
    const { status } = await recheck(first.id, LOTTERY_DESK);
    expect(status).toBe(404);
  });
});
