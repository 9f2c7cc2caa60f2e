/** Test helpers: temporary data directories, records written through the import contract. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { FastifyInstance } from "fastify";
import type { Department } from "../common/departments.ts";
import { parseRecord } from "../common/records.ts";
import { openDepartmentDatabase } from "../common/sqlite.ts";
import { journalStart, readJournal, scanJournal } from "../gateway/ledger/journal.ts";
import type { WireRecord } from "../gateway/ledger/wire.ts";
import { departmentModules } from "../subgraphs/registry.ts";

/** Resolves once `condition` holds (checked every 20 ms); rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Every record in the audit journals of `dir`, as written: what the gateway has acknowledged,
 * whether or not its writer has moved it into audit.db yet.
 */
export function journalRecords(dir: string): WireRecord[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".journal"))
    .flatMap((name) => scanJournal(readJournal(join(dir, name)), journalStart(name)).records);
}

/** A fresh data directory and its removal. */
export function tempDataDir(prefix = "mianzheng-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes records (as an export would carry them) into a department's database; throws on a bad one. */
export function writeRecords(department: Department, dir: string, lines: readonly object[]): void {
  const module = departmentModules[department];
  const database = openDepartmentDatabase(department, module.tables, { dir });
  const write = module.writer(database.db) as (record: unknown) => void;
  try {
    database.sqlite.transaction(() => {
      lines.forEach((line, index) => {
        const parsed = parseRecord(department, line);
        if (!parsed.ok) throw new Error(`test record ${index + 1}: ${parsed.reason}`);
        write(parsed.record);
      });
    })();
  } finally {
    database.close();
  }
}

export interface GraphQLResult<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; path?: unknown[]; extensions?: Record<string, unknown> }>;
}

/** Posts a GraphQL request to an app without a network (Fastify inject). */
export async function inject<T = Record<string, unknown>>(
  app: FastifyInstance,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResult<T>> {
  const response = await app.inject({
    method: "POST",
    url: "/graphql",
    headers: { "content-type": "application/json", ...headers },
    payload: JSON.stringify({ query, variables }),
  });
  return { status: response.statusCode, ...(response.json() as object) };
}

const run = promisify(execFile);

/** `npm run audit -- <args>` on a data directory: its exit code and what it printed. */
export async function audit(
  dir: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [
      "--import",
      "tsx",
      "scripts/audit.ts",
      ...args,
      "--data-dir",
      dir,
    ]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const LOCK_HOLDER = new URL("./security/fixtures/lock-holder.ts", import.meta.url).pathname;

/**
 * Another process holding a lock (`holder("lock", path)`, a gateway's journal lock) or a claim
 * (`holder("claim", file, job)`, a verify run's) until it is killed; `kill` waits for its end.
 */
export function holder(
  ...args: ["lock", string] | ["claim", string, string]
): Promise<{ pid: number; kill(): Promise<void> }> {
  return fixtureProcess(LOCK_HOLDER, args, "held");
}

/**
 * A test fixture (`node --import tsx <script> <args>`) in a process of its own, once it has
 * printed `ready` (what it was started to do is done); `kill` ends it with SIGKILL, as a crash
 * would, and waits for its end.
 */
export async function fixtureProcess(
  script: string,
  args: readonly string[],
  ready: string,
): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let errors = "";
  child.stderr.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let printed = "";
  try {
    await new Promise<void>((resolve, reject) => {
      // The marker may come split over two chunks: what was printed is looked at whole.
      child.stdout.on("data", (chunk: Buffer) => {
        printed += chunk.toString();
        if (printed.includes(ready)) resolve();
      });
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`${script} exited (${code}): ${errors}`)));
      setTimeout(
        () => reject(new Error(`${script} did not print "${ready}" within 30 s: ${errors}`)),
        30_000,
      ).unref();
    });
  } catch (error) {
    // A fixture that never got ready must not outlive the test that started it.
    child.kill("SIGKILL");
    throw error;
  }
  return {
    pid: child.pid as number,
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * How a child process ends: its exit code and everything it printed. One still running after
 * `deadlineMs` (a refusal that regressed into a server listening) is killed, and the test fails.
 */
export function exitOf(
  child: ChildProcess,
  deadlineMs = 30_000,
): Promise<{ code: number | null; output: string }> {
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`still running after ${deadlineMs} ms, killed:\n${output}`));
    }, deadlineMs);
    child.once("error", (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    child.once("exit", (code) => {
      clearTimeout(deadline);
      resolve({ code, output });
    });
  });
}
