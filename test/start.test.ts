/**
 * `npm start` as a user runs it (`node scripts/run.mjs start`: the bundles of scripts/build.mjs,
 * rebuilt when stale), on an empty data directory: it seeds a population, then answers through the
 * gateway from all six departments, with the audit ledger's writer thread and the proof-signing
 * thread, which the bundles start from files of their own; Ctrl-C (SIGINT) stops every process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEPARTMENTS, type Department, urlVariable } from "../common/departments.ts";
import { processTree } from "../scripts/bench/processes.ts";
import { journalRecords, tempDataDir } from "./helpers.ts";
import { DEV_DESK } from "./platform.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

let data: ReturnType<typeof tempDataDir>;
let start: ChildProcess;
let output = "";
let gateway: string;
let departmentUrls: Record<Department, string>;

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function post(query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${gateway}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...DEV_DESK },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    body: (await response.json()) as { data?: Record<string, unknown>; errors?: unknown[] },
  };
}

/** What `npm start` prints (kept as it comes), and when it says the platform is running. */
function untilRunning(child: ChildProcess): { ready: Promise<void>; output: () => string } {
  let text = "";
  const ready = new Promise<void>((resolve, reject) => {
    const keep = (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("Press Ctrl-C to stop.")) resolve();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}):\n${text}`)));
  });
  return { ready, output: () => text };
}

/** `npm start` on `dir`, every server on a port the system picks, with these settings besides. */
function npmStart(dir: string, settings: NodeJS.ProcessEnv): ChildProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dir,
    PORT: "0",
    LOG_LEVEL: "warn",
    ...settings,
  };
  for (const department of DEPARTMENTS) {
    env[urlVariable(department)] = "http://127.0.0.1:0/graphql";
  }
  return spawn(process.execPath, ["scripts/run.mjs", "start"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Where `npm start` says the gateway and each department listen. */
function listening(text: string): { gateway: string; departments: Record<Department, string> } {
  const at = (name: string) => {
    const match = new RegExp(`^  ${name} +http://localhost:(\\d+)/graphql`, "m").exec(text);
    if (!match) throw new Error(`npm start did not say where ${name} listens:\n${text}`);
    return `http://127.0.0.1:${match[1]}`;
  };
  return {
    gateway: at("gateway"),
    departments: Object.fromEntries(
      DEPARTMENTS.map((department) => [department, at(department)]),
    ) as Record<Department, string>,
  };
}

/**
 * Processes still running on `dir` (DATA_DIR in their environment): every process `npm start`
 * starts inherits it. Asked by process rather than by port, which another test may take.
 */
function survivors(dir: string): number[] {
  const marker = `DATA_DIR=${dir}\0`;
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, "latin1").includes(marker);
      } catch {
        return false; // gone meanwhile, or not ours
      }
    })
    .map(Number);
}

beforeAll(async () => {
  data = tempDataDir();
  start = npmStart(data.dir, { SEED_PERSONS: "300" });
  const running = untilRunning(start);
  await running.ready;
  output = running.output();
  ({ gateway, departments: departmentUrls } = listening(output));
}, 180_000);

afterAll(async () => {
  if (start.exitCode === null) {
    start.kill("SIGKILL");
    await exited(start);
  }
  data.remove();
});

describe("npm start", () => {
  it("seeds the empty data directory and says where everything listens, port 0 included", async () => {
    expect(output).toContain("holds no department database: seeding 300 demo persons");
    // Asked for port 0, each server is where the banner says: seven ports, all different.
    const urls = [gateway, ...Object.values(departmentUrls)];
    expect(new Set(urls).size).toBe(7);
    for (const url of urls) {
      expect(new URL(url).port).not.toBe("0");
      expect((await fetch(`${url}/health`)).status).toBe(200);
    }
    // The launcher, the departments' process and the gateway's, each seen by its DATA_DIR (the
    // check the stops below rely on).
    expect(survivors(data.dir).length).toBeGreaterThanOrEqual(3);
  });

  it("answers facts from all six departments through the gateway, recorded in the ledger", async () => {
    const demo = JSON.parse(readFileSync(join(data.dir, "demo-subjects.json"), "utf8")) as {
      subjects: Record<string, { ids: string[] }>;
    };
    const id = Object.values(demo.subjects).flatMap((subject) => subject.ids)[0];
    const { status, body } = await post(
      `query StartCheck($id: ID!) { person(id: $id) { id name hukouRegion { code } hasValidDriverLicense
        maritalStatus legalRepresentativeOf { uscc }
        consecutiveInsuredMonths(region: "110000", upTo: "2026-10")
        incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025) } }`,
      { id },
    );
    expect(body.errors).toBeUndefined();
    expect(status).toBe(200);
    expect(body.data?.person).toMatchObject({ id });
    // Acknowledged, so in the gateway's journal already: the subject, answered, by all six.
    const records = journalRecords(data.dir).filter(
      (record) => record.operationName === "StartCheck",
    );
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ subjects: id, outcomes: "a", deskId: "dev-desk" });
    expect(records[0]?.departments).toEqual([...DEPARTMENTS].sort());
  });

  it("signs proofs (a worker thread of the bundle)", async () => {
    const { body } = await post(
      `{ verify(policy: "beijing-car-lottery/individual", subjects: ["110105198503121015"],
        on: "2026-11-01") { outcome proof } }`,
    );
    expect(body.errors).toBeUndefined();
    const verdicts = (body.data?.verify ?? []) as Array<{ outcome: string; proof: string }>;
    expect(verdicts).toHaveLength(1);
    // A compact JWS: header, payload, signature.
    expect(verdicts[0]?.proof.split(".")).toHaveLength(3);
  });

  it("refuses an unsigned request at a department", async () => {
    const response = await fetch(`${departmentUrls.hukou}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(response.status).toBe(401);
  });

  it("stops every process on Ctrl-C and exits 0, a client keeping its connection alive or not", async () => {
    // A client that keeps its connection open between requests (Node's agent keeps idle sockets
    // until the server closes them): the gateway used to wait for it for its 72 s keep-alive
    // timeout, and was killed at npm start's 10 s deadline with its journal unclosed.
    const agent = new Agent({ keepAlive: true });
    try {
      let started = 0;
      const answered = new Promise<number>((resolve, reject) => {
        const request = httpRequest(
          `${gateway}/graphql`,
          { method: "POST", agent, headers: { "content-type": "application/json", ...DEV_DESK } },
          (response) => {
            response.resume();
            response.on("end", () => resolve(response.statusCode ?? 0));
          },
        );
        request.on("error", reject);
        // In flight when Ctrl-C comes: half its body sent before, the rest after.
        const body = JSON.stringify({ query: "{ __typename }" });
        request.write(body.slice(0, 10));
        setTimeout(() => {
          started = Date.now();
          start.kill("SIGINT");
          setTimeout(() => request.end(body.slice(10)), 500);
        }, 300);
      });
      expect(await answered).toBe(200);
      expect(await exited(start)).toBe(0);
      expect(Date.now() - started).toBeLessThan(8_000);
    } finally {
      agent.destroy();
    }
    expect(survivors(data.dir)).toEqual([]);
    // The gateway closed its ledger: its journal is moved and gone.
    expect(readdirSync(data.dir).filter((name) => name.endsWith(".journal"))).toEqual([]);
  }, 30_000);
});

describe("npm start over an interrupted seed, and when a process dies", () => {
  it("stops everything (exit 1) when a process is not ready within START_TIMEOUT_S, and refuses a bad value", async () => {
    const startWith = async (timeout: string) => {
      // The data directory is seeded already: only the start is timed.
      const child = npmStart(data.dir, { START_TIMEOUT_S: timeout });
      let text = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      child.stderr?.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      const code = await exited(child);
      return { code, text };
    };
    const hurried = await startWith("0.01");
    expect(hurried.code).toBe(1);
    expect(hurried.text).toMatch(
      /was not ready within 0\.01 s \(START_TIMEOUT_S gives it longer\)/,
    );
    expect(survivors(data.dir)).toEqual([]);
    const refusedValue = await startWith("soon");
    expect(refusedValue.code).toBe(2);
    expect(refusedValue.text).toContain(
      'START_TIMEOUT_S must be a number of seconds above 0, got "soon"',
    );
  }, 120_000);

  it("seeds again, then stops the whole platform (exit 1) when the departments' process dies", async () => {
    const own = tempDataDir();
    let second: ChildProcess | null = null;
    try {
      // What a seed stopped half-way leaves: its marker and a database it had begun.
      writeFileSync(join(own.dir, ".seeding"), "12345\n");
      writeFileSync(join(own.dir, "hukou.db"), "");
      second = npmStart(own.dir, { SEED_PERSONS: "200" });
      const running = untilRunning(second);
      await running.ready;
      expect(running.output()).toContain(
        "was being written when it stopped: seeding 200 demo persons again",
      );
      expect(existsSync(join(own.dir, ".seeding"))).toBe(false);
      const departments = processTree(second.pid as number).find((pid) =>
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("subgraph"),
      );
      expect(departments).toBeDefined();
      process.kill(departments as number, "SIGKILL");
      expect(await exited(second)).toBe(1);
      expect(running.output()).toContain("stopping the platform");
      expect(survivors(own.dir)).toEqual([]);
    } finally {
      // A failed assertion above must not leave the platform running on a removed directory.
      if (second && second.exitCode === null && second.signalCode === null) {
        second.kill("SIGINT");
        await exited(second);
      }
      own.remove();
    }
  }, 180_000);
});
