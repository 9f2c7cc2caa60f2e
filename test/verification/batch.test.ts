/**
 * `npm run verify` over a seeded population through the real gateway: 10,000 subjects with broken
 * lines among them, a run killed (SIGKILL) twice and resumed to byte-identical output, and a
 * department stopped during a run, whose UNDETERMINED verdicts a later `--only-undetermined` run
 * completes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { ProcessClaims } from "../../common/processes.ts";
import { databasePath } from "../../common/sqlite.ts";
import { seedPopulation } from "../../scripts/population.ts";
import { departmentModules } from "../../subgraphs/registry.ts";
import { tempDataDir, until } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";
import { D } from "./records.ts";

const POLICY = "beijing-car-lottery/individual";
const PERSONS = 10_000;

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
let ids: string[];
let input: string;
/** Traffic is reached through a relay: it can die and come back at the same address. */
const trafficRelay = new Relay();

interface Line {
  subject: string | null;
  outcome: string;
  reasons: string[];
  unavailable: string[];
  proof?: string;
}

beforeAll(async () => {
  data = tempDataDir();
  seedPopulation({ persons: PERSONS, seed: 11, asOf: D, dir: data.dir });
  const hukou = new Database(databasePath("hukou", data.dir), { readonly: true });
  ids = hukou.prepare("SELECT id FROM person ORDER BY rowid").pluck().all() as string[];
  hukou.close();
  // Broken lines among the subjects: a bad check character, an empty field, text.
  const rows = [...ids];
  rows.splice(10, 0, "110105198503121016");
  rows.splice(500, 0, "");
  rows.splice(5000, 0, "not an id");
  input = join(data.dir, "applicants.csv");
  writeFileSync(input, `id,name\n${rows.map((row) => `${row},x`).join("\n")}\n`);
  platform = await startPlatform(data.dir, {
    config: { breakerResetMs: 300 },
    relays: { traffic: trafficRelay },
  });
}, 120_000);

/** `npm run verify` runs still going when their test ended (it failed before their end). */
const verifyRuns = new Set<ChildProcess>();
afterEach(() => {
  for (const child of verifyRuns) child.kill("SIGKILL");
  verifyRuns.clear();
});

afterAll(() => tearDown(platform, () => data?.remove()));

function departmentUrl(app: FastifyInstance): string {
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/graphql`;
}

/** The process claiming an output for a verify run, if any. */
function claimHolder(output: string): number | null {
  const claims = ProcessClaims.open(`${output}.claim.db`);
  try {
    return claims.holder("output");
  } finally {
    claims.close();
  }
}

/** Starts `npm run verify` as the lottery desk; resolves with its exit code and output. */
function runVerify(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "scripts/verify.ts",
      "--policy",
      POLICY,
      "--on",
      D,
      "--gateway",
      platform.url,
      "--key",
      "dev-lottery-key",
      "--purpose",
      "car-lottery",
      "--batch",
      "500",
      ...args,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  verifyRuns.add(child);
  child.once("exit", () => verifyRuns.delete(child));
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

function lines(file: string): Line[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Line);
}

function countLines(file: string): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file).reduce((count, byte) => count + (byte === 0x0a ? 1 : 0), 0);
}

describe("npm run verify", { timeout: 240_000 }, () => {
  it("verifies 10,000 subjects in input order, broken lines INVALID, with a summary", async () => {
    const output = join(data.dir, "full.ndjson");
    const { code, stdout, stderr } = await runVerify(["--input", input, "--output", output]).done;
    expect(code, stderr).toBe(0);
    const results = lines(output);
    expect(results).toHaveLength(PERSONS + 3);
    expect(results[10]).toEqual({
      subject: "110105198503121016",
      outcome: "INVALID",
      reasons: ["INVALID_ID"],
      unavailable: [],
      proof: expect.any(String),
    });
    expect(results[500]).toMatchObject({ subject: "", outcome: "INVALID" });
    expect(results[5000]).toMatchObject({ subject: "NOT AN ID", outcome: "INVALID" });
    const valid = results.filter((result) => result.outcome !== "INVALID");
    expect(valid.map((result) => result.subject)).toEqual(ids);
    expect(valid.every((result) => result.unavailable.length === 0)).toBe(true);
    const outcomes = new Set(valid.map((result) => result.outcome));
    expect(outcomes).toEqual(new Set(["ELIGIBLE", "INELIGIBLE"]));
    // The same verdicts as the interactive API gives.
    const sample = valid.slice(0, 200);
    const { body } = await platform.query<{ verify: Line[] }>(
      `query ($s: [ID!]!) { verify(policy: "${POLICY}", subjects: $s, on: "${D}") { subject outcome reasons unavailable } }`,
      { s: sample.map((result) => result.subject) },
    );
    expect(body.data?.verify).toEqual(sample.map(({ proof: _, ...rest }) => rest));
    expect(stdout).toContain(`${PERSONS + 3} results`);
    expect(stdout).toMatch(/ELIGIBLE\s+\d+/);
    expect(stdout).toMatch(/INVALID\s+3/);
    expect(stdout).toMatch(/NO_VALID_DRIVER_LICENSE\s+\d+/);
    expect(stdout).toMatch(/subjects\/s/);
    // Results name people: readable by the operator alone.
    expect(statSync(output).mode & 0o777).toBe(0o600);
    // The run gave up its claim on the output.
    expect(claimHolder(output)).toBeNull();
  });

  it("killed at any point and run again, it continues to byte-identical output", async () => {
    const resumed = join(data.dir, "resumed.ndjson");
    const args = ["--input", input, "--output", resumed, "--concurrency", "3"];
    for (const killAt of [2_000, 6_000]) {
      const run = runVerify(args);
      await until(() => countLines(resumed) >= killAt || run.child.exitCode !== null);
      run.child.kill("SIGKILL");
      await run.done;
      expect(countLines(resumed)).toBeLessThan(PERSONS + 3);
    }
    const last = await runVerify(args).done;
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toMatch(/continued after \d+ done earlier/);

    // The same job uninterrupted (same state: application date and issue time of the proofs).
    const uninterrupted = join(data.dir, "uninterrupted.ndjson");
    const state = JSON.parse(readFileSync(`${resumed}.state.json`, "utf8"));
    writeFileSync(`${uninterrupted}.state.json`, JSON.stringify({ ...state, completedAt: null }));
    const whole = await runVerify(["--input", input, "--output", uninterrupted]).done;
    expect(whole.code, whole.stderr).toBe(0);
    expect(statSync(resumed).size).toBe(statSync(uninterrupted).size);
    expect(readFileSync(resumed).equals(readFileSync(uninterrupted))).toBe(true);
    expect(countLines(resumed)).toBe(PERSONS + 3);

    // Run again once complete: nothing is added.
    const again = await runVerify(args).done;
    expect(again.code).toBe(0);
    expect(readFileSync(resumed).equals(readFileSync(uninterrupted))).toBe(true);
  });

  it("refuses to overwrite another job's output", async () => {
    const output = join(data.dir, "resumed.ndjson");
    const other = await runVerify(["--input", input, "--output", output, "--no-proofs"]).done;
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("belongs to another job");
  });

  it("refuses, before writing anything, an input without the subject's column (exit 2)", async () => {
    const noColumn = join(data.dir, "no-column.csv");
    writeFileSync(noColumn, "name,pid\nA,1\n");
    const output = join(data.dir, "no-column.ndjson");
    const { code, stderr } = await runVerify(["--input", noColumn, "--output", output]).done;
    expect(code).toBe(2);
    expect(stderr).toContain('no "id" (or "subject") column');
    expect(existsSync(output) || existsSync(`${output}.state.json`)).toBe(false);
  });

  it("refuses a second run on an output another run is writing (exit 2)", async () => {
    const output = join(data.dir, "twice.ndjson");
    // Slowed down (small batches, one at a time) so that it is still writing when the second starts.
    const first = runVerify([
      "--input",
      input,
      "--output",
      output,
      "--no-proofs",
      "--batch",
      "20",
      "--concurrency",
      "1",
    ]);
    await until(() => countLines(output) >= 100);
    const second = await runVerify(["--input", input, "--output", output, "--no-proofs"]).done;
    expect(second.code).toBe(2);
    expect(second.stderr).toContain("another verify");
    expect((await first.done).code).toBe(0);
    expect(lines(output)).toHaveLength(PERSONS + 3);
  });

  it("takes over the claim of a run that died", async () => {
    const output = join(data.dir, "after-a-crash.ndjson");
    // A run that died holding the output: its claim names a process that has ended.
    const dead = spawn(process.execPath, ["-e", ""]);
    const deadPid = dead.pid as number;
    await new Promise((resolve) => dead.once("exit", resolve));
    const sqlite = new Database(`${output}.claim.db`);
    sqlite.exec("CREATE TABLE claims (job TEXT PRIMARY KEY, pid INTEGER NOT NULL) STRICT");
    sqlite.prepare("INSERT INTO claims (job, pid) VALUES ('output', ?)").run(deadPid);
    sqlite.close();
    expect(claimHolder(output)).toBe(deadPid);
    const { code } = await runVerify(["--input", input, "--output", output, "--no-proofs"]).done;
    expect(code).toBe(0);
    expect(lines(output)).toHaveLength(PERSONS + 3);
    expect(claimHolder(output)).toBeNull();
  });

  it("--only-undetermined refuses the output of a run that has not finished (exit 2)", async () => {
    const unfinished = join(data.dir, "unfinished.ndjson");
    writeFileSync(unfinished, "");
    writeFileSync(`${unfinished}.state.json`, JSON.stringify({ on: D, completedAt: null }));
    const { code, stderr } = await runVerify([
      "--only-undetermined",
      unfinished,
      "--output",
      join(data.dir, "from-unfinished.ndjson"),
    ]).done;
    expect(code).toBe(2);
    expect(stderr).toContain("has not finished");
  });

  it("a department stopped during a run gives UNDETERMINED naming it; --only-undetermined completes them", async () => {
    const output = join(data.dir, "traffic-down.ndjson");
    const run = runVerify([
      "--input",
      input,
      "--output",
      output,
      "--no-proofs",
      "--concurrency",
      "2",
    ]);
    await until(() => countLines(output) >= 2_000);
    await platform.stopDepartment("traffic");
    trafficRelay.down();
    const stopped = await run.done;
    // Finished, with verdicts still to be had: exit 3.
    expect(stopped.code, stopped.stderr).toBe(3);
    expect(stopped.stdout).toContain("UNDETERMINED: a department did not answer");
    // The command it suggests runs as printed, but for the key, which it names and does not show.
    expect(stopped.stdout).toContain(
      `--only-undetermined ${output} --output <new output> --gateway ${platform.url} --key <key> --purpose car-lottery --no-proofs`,
    );
    expect(stopped.stdout).not.toContain("dev-lottery-key");
    const results = lines(output);
    expect(results).toHaveLength(PERSONS + 3);
    const undetermined = results.filter((result) => result.outcome === "UNDETERMINED");
    expect(undetermined.length).toBeGreaterThan(1_000);
    for (const result of undetermined) {
      expect(result).toMatchObject({ reasons: [], unavailable: ["traffic"] });
    }
    // Requirements that could be evaluated still decide: never ELIGIBLE without traffic, and an
    // INELIGIBLE for a household-register reason names traffic as unavailable.
    const withoutTraffic = results.filter((result) => result.unavailable.includes("traffic"));
    expect(withoutTraffic.some((result) => result.outcome === "INELIGIBLE")).toBe(true);
    expect(withoutTraffic.every((result) => result.outcome !== "ELIGIBLE")).toBe(true);
    for (const result of withoutTraffic.filter((r) => r.outcome === "INELIGIBLE")) {
      expect(result.reasons).not.toContain("NO_VALID_DRIVER_LICENSE");
      expect(result.reasons).not.toContain("OWNS_CAR_IN_BEIJING");
    }

    // Traffic comes back at the same address (the relay's); only the undetermined subjects are
    // asked again.
    const traffic = await departmentModules.traffic.build({ dataDir: data.dir, logger: false });
    onTestFinished(() => traffic.close());
    await traffic.listen({ port: 0, host: "127.0.0.1" });
    trafficRelay.target = departmentUrl(traffic);
    trafficRelay.up();
    // Once the breaker lets requests through again, traffic answers.
    const probe = async () => {
      const { body } = await platform.query<{ verify: Line[] }>(
        `{ verify(policy: "${POLICY}", subjects: ["${ids[0]}"], on: "${D}") { subject outcome reasons unavailable } }`,
      );
      return body.data?.verify[0]?.unavailable.length === 0;
    };
    for (let attempt = 0; !(await probe()); attempt++) {
      if (attempt > 100) throw new Error("traffic did not come back");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const completed = join(data.dir, "completed.ndjson");
    const rerun = await runVerify([
      "--only-undetermined",
      output,
      "--output",
      completed,
      "--no-proofs",
    ]).done;
    expect(rerun.code, rerun.stderr).toBe(0);
    const finished = lines(completed);
    const reference = lines(join(data.dir, "full.ndjson")).map(({ proof: _, ...rest }) => rest);
    expect(finished).toHaveLength(results.length);
    const before = readFileSync(output, "utf8").split("\n");
    const after = readFileSync(completed, "utf8").split("\n");
    results.forEach((result, index) => {
      if (result.outcome === "UNDETERMINED") {
        // Verified again, now as an uninterrupted run would have.
        expect(finished[index]).toEqual(reference[index]);
      } else {
        // Already determined: copied as it was.
        expect(after[index]).toBe(before[index]);
      }
    });
    expect(finished.some((result) => result.outcome === "UNDETERMINED")).toBe(false);
  });
});
