/**
 * `npm run bench:startup [-- --data-dir DIR] [--runs N] [--command "npm start"]`: how long the
 * whole platform takes from the start command to its first answered GraphQL query.
 *
 * Each run starts the command (default `npm start`) on an existing data directory (default: a
 * 20,000-person population seeded once into `.bench/startup-20000`), with the gateway and the six
 * departments on free ports, then POSTs one query asking a demo person's facts from all six
 * departments as the development desk every 10 ms until an answer arrives with status 200, the
 * person and no error. It prints the time to that answer and to the "Mianzheng is running" line,
 * then stops the platform as Ctrl-C does (SIGINT to the process group) and times the shutdown.
 * On Linux it also reads the CPU time the platform's processes had used by the first answer (less
 * sensitive than wall time to other work on the machine; `--processes` lists it per process) and
 * checks that every one of them has ended after Ctrl-C.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEPARTMENTS, urlVariable } from "../common/departments.ts";
import { freePort, ROOT } from "./bench/processes.ts";

const { values } = parseArgs({
  options: {
    "data-dir": { type: "string" },
    runs: { type: "string", default: "5" },
    command: { type: "string", default: "npm start" },
    processes: { type: "boolean", default: false },
  },
});

/** The example query of the README: one fact or more from every department. */
const QUERY = `query PersonFacts($id: ID!) {
  person(id: $id) {
    id
    name
    hukouRegion { code name }
    hasValidDriverLicense
    maritalStatus
    legalRepresentativeOf { uscc name }
    consecutiveInsuredMonths(region: "110000", upTo: "2026-10")
    incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025)
  }
}`;

function prepareDataDir(): string {
  if (values["data-dir"]) return values["data-dir"];
  const dir = join(ROOT, ".bench", "startup-20000");
  if (!existsSync(join(dir, "hukou.db"))) {
    console.log(`seeding 20000 persons into ${dir} (once)`);
    const seeded = spawnSync(
      "npm",
      ["run", "seed", "--", "--persons", "20000", "--data-dir", dir],
      {
        cwd: ROOT,
        stdio: "inherit",
      },
    );
    if (seeded.status !== 0) throw new Error("seeding failed");
  }
  return dir;
}

function demoSubject(dir: string): string {
  const file = join(dir, "demo-subjects.json");
  if (!existsSync(file)) return "230421198903158822";
  const demo = JSON.parse(readFileSync(file, "utf8")) as {
    subjects: Record<string, { ids: string[] }>;
  };
  const first = Object.values(demo.subjects).find((subject) => subject.ids.length > 0);
  return first?.ids[0] ?? "230421198903158822";
}

interface RunResult {
  firstAnswerMs: number;
  /** CPU time the platform's processes had used by then (Linux only), or null. */
  cpuMs: number | null;
  readyLineMs: number | null;
  shutdownMs: number;
}

async function answered(url: string, id: string): Promise<boolean> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: "Bearer dev-desk-key",
        "x-purpose": "demo",
      },
      body: JSON.stringify({ query: QUERY, variables: { id } }),
      signal: AbortSignal.timeout(5000),
    });
    if (response.status !== 200) return false;
    const body = (await response.json()) as { data?: { person?: unknown }; errors?: unknown[] };
    return Boolean(body.data?.person) && !body.errors?.length;
  } catch {
    return false;
  }
}

interface ProcessStat {
  pid: number;
  ppid: number;
  /** User + system time of all its threads, and of its children that ended (once reaped). */
  cpuMs: number;
  command: string;
}

/** The process `root` and all its descendants, from /proc (Linux only; empty elsewhere). */
function processTree(root: number): ProcessStat[] {
  if (!existsSync("/proc/self/stat")) return [];
  const msPerTick = 1000 / 100; // USER_HZ is 100 on Linux
  const all: ProcessStat[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // After "pid (comm) ": state ppid pgrp … utime(11) stime cutime cstime.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
      const command = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
      all.push({ pid: Number(entry), ppid: Number(fields[1]), cpuMs: ticks * msPerTick, command });
    } catch {
      // The process ended meanwhile.
    }
  }
  const tree = all.filter((proc) => proc.pid === root);
  for (let i = 0; i < tree.length; i++) {
    tree.push(...all.filter((proc) => proc.ppid === (tree[i] as ProcessStat).pid));
  }
  return tree;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

async function once(dir: string, id: string): Promise<RunResult> {
  const gatewayPort = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dir, PORT: String(gatewayPort) };
  for (const department of DEPARTMENTS) {
    env[urlVariable(department)] = `http://127.0.0.1:${await freePort()}/graphql`;
  }
  const [command, ...args] = (values.command as string).split(" ").filter(Boolean);
  const started = performance.now();
  // Its own process group, so that stopping it reaches every process, as Ctrl-C in a terminal.
  const child = spawn(command as string, args, {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let tail = "";
  let readyLineMs: number | null = null;
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-6000);
    if (readyLineMs === null && tail.includes("Mianzheng is running")) {
      readyLineMs = performance.now() - started;
    }
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const url = `http://127.0.0.1:${gatewayPort}/graphql`;
  const deadline = started + 120_000;
  let firstAnswerMs = -1;
  let tree: ProcessStat[] = [];
  let failure: Error | null = null;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) {
      failure = new Error(`the platform exited:\n${tail}`);
      break;
    }
    if (await answered(url, id)) {
      firstAnswerMs = performance.now() - started;
      tree = child.pid ? processTree(child.pid) : [];
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (firstAnswerMs < 0) failure ??= new Error(`no answer within 120 s:\n${tail}`);

  // Ctrl-C in a terminal signals the foreground process group: the command's.
  const stopping = performance.now();
  if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGINT");
  const deadlineToStop = stopping + 15_000;
  await exited(child);
  while (tree.some((proc) => alive(proc.pid)) && performance.now() < deadlineToStop) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const shutdownMs = performance.now() - stopping;
  const left = tree.filter((proc) => alive(proc.pid));
  for (const proc of left) process.kill(proc.pid, "SIGKILL");
  if (failure) throw failure;
  if (left.length > 0) {
    throw new Error(`still running 15 s after Ctrl-C: ${left.map((p) => p.command).join("; ")}`);
  }
  if (values.processes) {
    for (const proc of tree) {
      console.log(`  ${String(Math.round(proc.cpuMs)).padStart(6)} ms CPU  ${proc.command}`);
    }
  }
  const cpuMs = tree.length > 0 ? tree.reduce((sum, proc) => sum + proc.cpuMs, 0) : null;
  return { firstAnswerMs, cpuMs, readyLineMs, shutdownMs };
}

const dir = prepareDataDir();
const id = demoSubject(dir);
const runs = Number(values.runs);
console.log(`${values.command} on ${dir}, asking person ${id} of all six departments`);
const results: RunResult[] = [];
for (let run = 1; run <= runs; run++) {
  const result = await once(dir, id);
  results.push(result);
  console.log(
    `run ${run}: first answer ${Math.round(result.firstAnswerMs)} ms` +
      (result.cpuMs === null ? "" : ` (${Math.round(result.cpuMs)} ms CPU)`) +
      (result.readyLineMs === null ? "" : `, ready line ${Math.round(result.readyLineMs)} ms`) +
      `, shutdown ${Math.round(result.shutdownMs)} ms`,
  );
}
const sorted = results.map((result) => result.firstAnswerMs).sort((a, b) => a - b);
const median = sorted[Math.floor((sorted.length - 1) / 2)] as number;
console.log(
  `first answer: min ${Math.round(sorted[0] as number)} ms, median ${Math.round(median)} ms, ` +
    `max ${Math.round(sorted.at(-1) as number)} ms over ${runs} runs`,
);
