/**
 * A job's UNDETERMINED verdicts checked again through the job API (`POST /jobs/:id/recheck`, the
 * CLI's `--only-undetermined`): social security is reached through a relay that dies and comes
 * back; the household register through one that sees which subjects the recheck verifies (every
 * verification asks it first); the recheck's results are the whole job's.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";
import { type JobView, jobApi, POLICY } from "./job-api.ts";
import { D, qualifiedMigrant, Records } from "./records.ts";

const r = new Records();
/** Decided by the household register and traffic alone. */
const beijinger = r.person();
r.licence(beijinger);
/** Needs social security's insured months. */
const migrant = qualifiedMigrant(r);

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
const social = new Relay();
const hukou = new Relay();

beforeAll(async () => {
  data = tempDataDir();
  r.write(data.dir);
  // The breaker lets a trial call through 100 ms after it opened: social is asked again soon
  // after it is back.
  platform = await startPlatform(data.dir, {
    config: { breakerResetMs: 100 },
    relays: { social, hukou },
  });
});

afterAll(() => tearDown(platform, data.remove));

const { submit, until, finished, results, recheck } = jobApi(() => platform);
const csv = (subjects: readonly string[]) => `id\n${subjects.join("\n")}\n`;
const QUERY = `policy=${encodeURIComponent(POLICY)}&on=${D}`;
/** The case the first job was submitted under. */
const CASE = { ...DEV_DESK, "x-case-id": "2026-R5-000777" };

/** Until social answers again (its breaker half-open, a trial call through). */
async function socialBack(): Promise<void> {
  social.up();
  for (let attempt = 0; ; attempt++) {
    const { body } = await platform.query<{ verify: Array<{ unavailable: string[] }> }>(
      `{ verify(policy: "${POLICY}", subjects: ["${migrant}"], on: "${D}") { unavailable } }`,
    );
    if (body.data?.verify[0]?.unavailable.length === 0) return;
    if (attempt > 100) throw new Error("social did not come back");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("POST /jobs/:id/recheck", { timeout: 120_000 }, () => {
  let first: JobView;
  let firstLines: string[];

  it("verifies a finished job's UNDETERMINED subjects again, asking only about them, and keeps the other lines", async () => {
    social.down();
    const submitted = await submit(csv([beijinger, migrant]), QUERY, CASE);
    expect(submitted.status).toBe(202);
    first = await finished(submitted.body.id);
    const before = await results(first.id);
    firstLines = before.raw;
    expect(before.lines.map(({ outcome, unavailable }) => ({ outcome, unavailable }))).toEqual([
      { outcome: "ELIGIBLE", unavailable: [] },
      { outcome: "UNDETERMINED", unavailable: ["social"] },
    ]);

    await socialBack();
    hukou.clear();
    // Posted without the case id: the recheck continues the first job's case.
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
    expect(decodeJwt(lines[1]?.proof as string).caseId).toBe("2026-R5-000777");
    // Only the migrant was verified again: the register, asked first about every subject a
    // verification decides, heard of nobody else.
    const asked = hukou.arrivals.map((arrival) => arrival.body).join("\n");
    expect(asked).toContain(migrant);
    expect(asked).not.toContain(beijinger);
    // The first job's results are as they were.
    expect((await results(first.id)).raw).toEqual(firstLines);
  });

  it("refuses a job without UNDETERMINED verdicts, a failed one, one still running, and a second recheck while one runs", async () => {
    const settled = await submit(csv([beijinger]));
    await finished(settled.body.id);
    const nothing = await recheck(settled.body.id);
    expect(nothing.status).toBe(400);
    expect(nothing.body.errors?.[0]?.extensions.code).toBe("BAD_USER_INPUT");
    expect(nothing.body.errors?.[0]?.message).toContain("has no UNDETERMINED verdicts");

    // A quote left open on the third line: the job fails there.
    const broken = await submit(`id\n${beijinger}\n"${migrant}\n`);
    expect((await finished(broken.body.id)).status).toBe("failed");
    const failed = await recheck(broken.body.id);
    expect(failed.status).toBe(400);
    expect(failed.body.errors?.[0]?.message).toContain("a failed job is not checked again");

    // Twenty thousand lines with social down: the job takes a while, every verdict UNDETERMINED.
    social.down();
    const long = await submit(csv(Array.from({ length: 20_000 }, () => migrant)));
    const early = await recheck(long.body.id);
    expect(early.status).toBe(409);
    expect(early.body.errors?.[0]?.extensions.code).toBe("CONFLICT");
    expect(early.body.errors?.[0]?.message).toMatch(/is (queued|running); .* once it is done/);
    expect((await finished(long.body.id)).counts.byOutcome).toEqual({ UNDETERMINED: 20_000 });
    await socialBack();
    // A recheck of twenty thousand takes seconds; a second one asked meanwhile is refused.
    const first20k = await recheck(long.body.id);
    expect(first20k.status).toBe(202);
    const second = await recheck(long.body.id);
    expect(second.status).toBe(409);
    expect(second.body.errors?.[0]?.extensions.code).toBe("CONFLICT");
    expect(second.body.errors?.[0]?.message).toContain(
      `being checked again by job ${first20k.body.id}`,
    );
    expect((await finished(first20k.body.id)).counts.byOutcome).toEqual({ ELIGIBLE: 20_000 });
  });

  it("resumes a recheck interrupted by a gateway restart: every line once, in order", async () => {
    // Thirty thousand lines, every other one the migrant: UNDETERMINED while social is down.
    social.down();
    const subjects = Array.from({ length: 30_000 }, (_, i) => (i % 2 === 0 ? beijinger : migrant));
    const long = await finished((await submit(csv(subjects))).body.id);
    expect(long.counts.byOutcome).toEqual({ ELIGIBLE: 15_000, UNDETERMINED: 15_000 });
    const before = (await results(long.id)).raw;
    await socialBack();
    const again = await recheck(long.id);
    expect(again.status).toBe(202);
    await until(again.body.id, (job) => job.done > 0, 10);
    await platform.close();
    const stopped = JSON.parse(
      readFileSync(join(data.dir, "jobs", again.body.id, "job.json"), "utf8"),
    ) as JobView;
    expect(stopped.done).toBeLessThan(subjects.length);
    platform = await startPlatform(data.dir, {
      config: { breakerResetMs: 100 },
      relays: { social, hukou },
    });
    const view = await finished(again.body.id);
    expect(view).toMatchObject({ status: "done", done: subjects.length });
    expect(view.counts.byOutcome).toEqual({ ELIGIBLE: subjects.length });
    const { lines, raw } = await results(again.body.id);
    expect(lines.map((line) => line.subject)).toEqual(subjects);
    // The lines that stood are the first job's, byte for byte; the others verified again.
    for (let i = 0; i < subjects.length; i += 2) expect(raw[i], `line ${i}`).toBe(before[i]);
    expect(
      lines.every((line) => line.outcome === "ELIGIBLE" && line.unavailable.length === 0),
    ).toBe(true);
  });

  it("is another desk's job: not found", async () => {
    const { status } = await recheck(first.id, LOTTERY_DESK);
    expect(status).toBe(404);
  });
});
