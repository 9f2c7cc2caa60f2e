/**
 * The job API for desks that cannot run the CLI: upload, progress, streamed results, a job
 * surviving a gateway restart, and jobs kept to the desk that submitted them.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databasePath } from "../../common/sqlite.ts";
import { seedPopulation } from "../../scripts/population.ts";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { type JobView, jobApi, POLICY } from "./job-api.ts";
import { D } from "./records.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
let ids: string[];
let csv: string;

beforeAll(async () => {
  data = tempDataDir();
  seedPopulation({ persons: 6_000, seed: 5, asOf: D, dir: data.dir });
  const hukou = new Database(databasePath("hukou", data.dir), { readonly: true });
  ids = hukou.prepare("SELECT id FROM person ORDER BY rowid").pluck().all() as string[];
  hukou.close();
  csv = `id\n${ids.join("\n")}\nnot-an-id\n`;
  platform = await startPlatform(data.dir);
}, 120_000);

afterAll(() => tearDown(platform, data.remove));

const { base, submit, progress, until, finished, results } = jobApi(() => platform);

describe("POST /jobs", { timeout: 180_000 }, () => {
  it("verifies an uploaded CSV; GET /jobs/:id/results streams the NDJSON as the job runs", async () => {
    const { status, body } = await submit(csv);
    expect(status).toBe(202);
    expect(body).toMatchObject({ status: "queued", total: ids.length + 1, done: 0 });
    // Asked for at once, the stream follows the job to its end.
    const streamed = await results(body.id);
    expect(streamed.status).toBe(200);
    expect(streamed.lines).toHaveLength(ids.length + 1);
    expect(streamed.lines.slice(0, -1).map((line) => line.subject)).toEqual(ids);
    expect(streamed.lines.at(-1)).toMatchObject({ subject: "NOT-AN-ID", outcome: "INVALID" });
    expect(streamed.lines.every((line) => typeof line.proof === "string")).toBe(true);
    const view = await finished(body.id);
    expect(view).toMatchObject({ status: "done", done: ids.length + 1 });
    expect(view.counts.byOutcome.INVALID).toBe(1);
    expect((view.counts.byOutcome.ELIGIBLE ?? 0) + (view.counts.byOutcome.INELIGIBLE ?? 0)).toBe(
      ids.length,
    );
  });

  it("takes NDJSON too, and proofs=false leaves the proofs out", async () => {
    const ndjson = ids
      .slice(0, 50)
      .map((id) => JSON.stringify({ id }))
      .join("\n");
    const { body } = await submit(
      ndjson,
      `policy=${encodeURIComponent(POLICY)}&on=${D}&proofs=false`,
      { ...DEV_DESK, "content-type": "application/x-ndjson" },
    );
    await finished(body.id);
    const { lines } = await results(body.id);
    expect(lines.map((line) => line.subject)).toEqual(ids.slice(0, 50));
    expect(lines.every((line) => line.proof === undefined)).toBe(true);
  });

  it("reads a CSV with quoted fields as CSV, whatever its type says", async () => {
    const quoted = `"id","name"\n${ids
      .slice(0, 3)
      .map((id) => `"${id}","x"`)
      .join("\n")}\n`;
    const query = `policy=${encodeURIComponent(POLICY)}&on=${D}&proofs=false`;
    for (const type of ["text/csv", "application/octet-stream"]) {
      const { status, body } = await submit(quoted, query, { ...DEV_DESK, "content-type": type });
      expect(status).toBe(202);
      expect(await finished(body.id)).toMatchObject({ status: "done", done: 3 });
      const { lines } = await results(body.id);
      expect(lines.map((line) => line.subject)).toEqual(ids.slice(0, 3));
      expect(lines.some((line) => line.outcome === "INVALID")).toBe(false);
    }
  });

  it("refuses an upload it cannot read with 400, keeping nothing of it; a record broken later fails the job, naming it, with the verdicts before it", async () => {
    const query = `policy=${encodeURIComponent(POLICY)}&on=${D}&proofs=false`;
    const before = readdirSync(join(data.dir, "jobs")).length;
    const refused = await submit(`id\n"${ids[0]}"x\n`, query);
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]).toMatchObject({
      message: expect.stringContaining("the CSV cannot be read (line 2)"),
      extensions: { code: "BAD_USER_INPUT" },
    });
    expect(readdirSync(join(data.dir, "jobs"))).toHaveLength(before);
    // 2,500 good lines, then a quote that never closes.
    const good = ids.slice(0, 2_500);
    const { status, body } = await submit(`id\n${good.join("\n")}\n"${ids[0]}\n`, query);
    expect(status).toBe(202);
    const failed = await finished(body.id);
    expect(failed).toMatchObject({ status: "failed", done: 2_500 });
    expect((failed as JobView & { error: string }).error).toContain("the CSV cannot be read");
    const { lines } = await results(body.id);
    expect(lines.map((line) => line.subject)).toEqual(good);
  });

  it("refuses an unknown policy and a missing one", async () => {
    expect((await submit(csv, "policy=no/such")).status).toBe(400);
    expect((await submit(csv, "")).status).toBe(400);
  });

  it("refuses at upload a CSV without the subject's column, keeping nothing of it", async () => {
    const jobsBefore = readdirSync(join(data.dir, "jobs")).length;
    const { status, body } = await submit(`name,phone\nA,1\n`);
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions.code).toBe("BAD_USER_INPUT");
    expect(body.errors?.[0]?.message).toContain('no "id" (or "subject") column');
    expect(readdirSync(join(data.dir, "jobs")).length).toBe(jobsBefore);
  });

  it("a job interrupted by a gateway restart resumes, nothing lost or duplicated", async () => {
    const query = `policy=${encodeURIComponent(POLICY)}&on=${D}&proofs=false`;
    const reference = (await submit(csv, query)).body.id;
    await finished(reference);
    const { body } = await submit(csv, query);
    await until(body.id, (job) => job.done > 0, 20);
    await platform.close();
    const stopped = JSON.parse(
      readFileSync(join(data.dir, "jobs", body.id, "job.json"), "utf8"),
    ) as JobView;
    expect(stopped.done).toBeLessThan(ids.length + 1);
    platform = await startPlatform(data.dir);
    expect((await finished(body.id)).done).toBe(ids.length + 1);
    const resumed = await results(body.id);
    const uninterrupted = await results(reference);
    expect(resumed.text).toBe(uninterrupted.text);
  });

  it("a job whose job.json was damaged is left alone: the gateway starts and runs the others", async () => {
    const damaged = "00000000-0000-4000-8000-000000000000";
    mkdirSync(join(data.dir, "jobs", damaged), { recursive: true });
    writeFileSync(join(data.dir, "jobs", damaged, "job.json"), '{"id": "00000000-');
    await platform.close();
    platform = await startPlatform(data.dir);
    expect((await progress(damaged)).status).toBe(404);
    const { body } = await submit(
      `id\n${ids.slice(0, 5).join("\n")}`,
      `policy=${encodeURIComponent(POLICY)}&on=${D}&proofs=false`,
    );
    expect(await finished(body.id)).toMatchObject({ status: "done", done: 5 });
  });

  it("leaves a job claimed by a running process alone, and takes over a dead process's claim", async () => {
    const query = `policy=${encodeURIComponent(POLICY)}&on=${D}&proofs=false`;
    const { body } = await submit(`id\n${ids.slice(0, 5).join("\n")}`, query);
    await finished(body.id);
    await platform.close();
    // The job as another gateway would find it queued, claimed by a process that is running
    // (this test's parent) and then by one that has ended.
    const dir = join(data.dir, "jobs", body.id);
    const job = JSON.parse(readFileSync(join(dir, "job.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(
      join(dir, "job.json"),
      JSON.stringify({ ...job, status: "queued", done: 0, finishedAt: null }),
    );
    rmSync(join(dir, "results.ndjson"));
    const claim = (pid: number) => {
      const claims = new Database(join(data.dir, "jobs", ".claims.db"));
      claims.prepare("INSERT OR REPLACE INTO claims (job, pid) VALUES (?, ?)").run(body.id, pid);
      claims.close();
    };
    claim(process.ppid);
    platform = await startPlatform(data.dir);
    // Jobs run one after another, the resumed ones first: once a job submitted now is done, the
    // claimed one has had its turn.
    const later = await submit(`id\n${ids.slice(5, 7).join("\n")}`, query);
    expect(await finished(later.body.id)).toMatchObject({ status: "done", done: 2 });
    expect((await progress(body.id)).body).toMatchObject({ status: "queued", done: 0 });
    await platform.close();

    const ended = spawnSync(process.execPath, ["-e", ""]).pid;
    claim(ended);
    platform = await startPlatform(data.dir);
    expect(await finished(body.id)).toMatchObject({ status: "done", done: 5 });
  });

  it("a job is seen only by the desk that submitted it", async () => {
    const { status, body } = await submit(
      `id\n${ids.slice(0, 10).join("\n")}`,
      `policy=${encodeURIComponent(POLICY)}&on=${D}`,
      LOTTERY_DESK,
    );
    expect(status).toBe(202);
    expect((await progress(body.id, LOTTERY_DESK)).status).toBe(200);
    expect((await progress(body.id, DEV_DESK)).status).toBe(404);
    expect((await results(body.id, DEV_DESK)).status).toBe(404);
    const anonymous = await fetch(`${base()}/jobs/${body.id}`);
    expect(anonymous.status).toBe(401);
  });
});
