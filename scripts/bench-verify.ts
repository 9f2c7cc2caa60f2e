/**
 * `npm run bench:verify -- --persons N`: the lottery round end to end. Seeds N persons into a
 * temporary data directory, starts the six subgraphs and the gateway each in its own process,
 * verifies every person with `beijing-car-lottery/individual` through the gateway with
 * `npm run verify` (its own process, as a desk runs it), with and without proofs, and prints
 * subjects/s, the CPU each process used (the gateway's split into its main thread and the others:
 * signing, concurrent GC) and their peak memory (with samples over the run, to show whether memory
 * stays flat).
 *
 * Options: --seed S, --on D (application date and seed date, default 2026-11-01), --data-dir DIR
 * (reuse a seeded directory), --mode proofs|no-proofs|both, --concurrency N, --batch N, --limit N
 * (verify only the first N persons), --cli FILE (the verify CLI to run, default scripts/verify.ts:
 * an earlier version of it, for a before/after comparison against the same gateway),
 * --cpu-prof (profiles of every process, the CLI's per mode, into DIR/profiles), --keep (keep the
 * directory), --security on|off (default on: the gateway's bundle as `npm start` runs it, the
 * lottery desk authenticated and every verdict written to the audit ledger, fsynced).
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { DEPARTMENTS, urlVariable } from "../common/departments.ts";
import { databasePath } from "../common/sqlite.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const POLICY = "beijing-car-lottery/individual";

const { values } = parseArgs({
  options: {
    persons: { type: "string", default: "200000" },
    seed: { type: "string", default: "1" },
    on: { type: "string", default: "2026-11-01" },
    "data-dir": { type: "string" },
    mode: { type: "string", default: "both" },
    concurrency: { type: "string", default: "4" },
    batch: { type: "string", default: "1000" },
    "cpu-prof": { type: "boolean", default: false },
    limit: { type: "string" },
    cli: { type: "string", default: "scripts/verify.ts" },
    security: { type: "string", default: "on" },
    keep: { type: "boolean", default: false },
  },
});
const persons = Number(values.persons);
if (!Number.isInteger(persons) || persons < 1)
  throw new Error("--persons must be a positive integer");
const modes =
  values.mode === "both"
    ? ["proofs", "no-proofs"]
    : values.mode === "proofs"
      ? ["proofs"]
      : ["no-proofs"];

if (values.security !== "on" && values.security !== "off") {
  throw new Error("--security must be on or off");
}
const secure = values.security === "on";

interface Child {
  label: string;
  process: ChildProcess;
  tail: () => string;
}

const children: Child[] = [];

function start(
  label: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  nodeFlags: string[] = [],
  tsx = true,
): Child {
  const loader = tsx ? ["--import", "tsx"] : [];
  const child = spawn(process.execPath, [...nodeFlags, ...loader, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let tail = "";
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const entry = { label, process: child, tail: () => tail };
  children.push(entry);
  return entry;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function waitReady(child: Child, url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${child.label} exited:\n${child.tail()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${child.label} not ready within 60 s:\n${child.tail()}`);
}

/** Resident and peak memory (MB) and CPU seconds of a process, from /proc. */
function usage(pid: number): { rss: number; hwm: number; cpu: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8").slice(
      readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2,
    );
    const fields = stat.split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024, cpu: ticks / 100 };
  } catch {
    return null;
  }
}

/**
 * CPU seconds of this process's children that have ended and been reaped (`cutime` + `cstime` of
 * /proc/self/stat): the difference over a child's run is all the CPU it used, to its last tick,
 * which sampling its /proc entry (gone once it exits) would miss.
 */
function endedChildrenCpu(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** CPU seconds of each thread of a process (the main thread's id is the process id). */
function threadCpu(pid: number): Map<number, number> {
  const threads = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        threads.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / 100);
      } catch {}
    }
  } catch {}
  return threads;
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.process.exitCode !== null || child.process.signalCode !== null)
            return resolve();
          child.process.once("exit", () => resolve());
          child.process.kill("SIGTERM");
          setTimeout(() => child.process.kill("SIGKILL"), 5000).unref();
        }),
    ),
  );
}

const dir = values["data-dir"] ?? mkdtempSync(join(tmpdir(), "mianzheng-bench-verify-"));
const removeDir = !values["data-dir"] && !values.keep;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void stopAll().then(() => {
      if (removeDir) rmSync(dir, { recursive: true, force: true });
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  });
}

try {
  if (!existsSync(databasePath("hukou", dir))) {
    console.log(`seeding ${persons} persons into ${dir} …`);
    const seeded = performance.now();
    const seed = start(
      "seed",
      [
        "scripts/seed.ts",
        "--persons",
        String(persons),
        "--seed",
        values.seed,
        "--as-of",
        values.on,
        "--data-dir",
        dir,
      ],
      {},
    );
    const code = await new Promise<number | null>((resolve) => seed.process.on("exit", resolve));
    if (code !== 0) throw new Error(`seeding failed:\n${seed.tail()}`);
    console.log(`seeded in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);
  }
  const hukou = new Database(databasePath("hukou", dir), { readonly: true });
  const all = hukou.prepare("SELECT id FROM person ORDER BY rowid").pluck().all() as string[];
  // --limit: verify only the first N persons of a larger register (e.g. to profile).
  const ids = values.limit ? all.slice(0, Number(values.limit)) : all;
  hukou.close();
  const input = join(dir, "lottery-applicants.csv");
  writeFileSync(input, `id\n${ids.join("\n")}\n`);
  console.log(`${ids.length} applicants in ${input}`);

  const profiles = join(dir, "profiles");
  if (values["cpu-prof"]) mkdirSync(profiles, { recursive: true });
  // One directory per process: Node names each thread's profile (tsx runs a loader thread too).
  const profileFlags = (name: string) =>
    values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", join(profiles, name)] : [];

  const env = { DATA_DIR: dir, LOG_LEVEL: "warn" };
  const urls: Record<string, string> = {};
  const subgraphs: Child[] = [];
  for (const department of DEPARTMENTS) {
    const port = await freePort();
    urls[urlVariable(department)] = `http://127.0.0.1:${port}/graphql`;
    const child = start(
      department,
      ["scripts/subgraph.ts", department, "--port", String(port)],
      env,
      profileFlags(department),
    );
    subgraphs.push(child);
    await waitReady(child, `http://127.0.0.1:${port}/ready`);
  }
  const gatewayPort = await freePort();
  // The gateway as `npm start` runs it: its bundle, and (by default) security on — the lottery
  // desk authenticated, every verdict in the audit ledger, fsynced (AUDIT_SYNC=full).
  const gateway = start(
    "gateway",
    ["scripts/run.mjs", "gateway"],
    { ...env, ...urls, PORT: String(gatewayPort), SECURITY: secure ? "on" : "off" },
    profileFlags("gateway"),
    false,
  );
  await waitReady(gateway, `http://127.0.0.1:${gatewayPort}/ready`);
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}/graphql`;
  const measured = [gateway, ...subgraphs];

  const rows: string[] = [];
  for (const mode of modes) {
    const output = join(dir, `results-${mode}.ndjson`);
    for (const file of [output, `${output}.state.json`]) rmSync(file, { force: true });
    const before = new Map(
      measured.map((child) => [child.label, usage(child.process.pid as number)]),
    );
    const gatewayPid = gateway.process.pid as number;
    const gatewayThreads = threadCpu(gatewayPid);
    const samples: Array<{ at: number; rss: Record<string, number> }> = [];
    const started = performance.now();
    const endedBefore = endedChildrenCpu();
    const cli = start(
      "verify",
      [
        values.cli,
        "--policy",
        POLICY,
        "--on",
        values.on,
        "--input",
        input,
        "--output",
        output,
        "--gateway",
        gatewayUrl,
        "--concurrency",
        values.concurrency,
        "--batch",
        values.batch,
        ...(mode === "no-proofs" ? ["--no-proofs"] : []),
        ...(secure ? ["--key", "dev-lottery-key", "--purpose", "car-lottery"] : []),
      ],
      {},
      profileFlags(`verify-${mode}`),
    );
    const peaks = new Map<string, number>();
    const sampler = setInterval(() => {
      const rss: Record<string, number> = {};
      for (const child of [...measured, cli]) {
        const now = usage(child.process.pid as number);
        if (!now) continue;
        rss[child.label] = now.rss;
        // VmHWM, not the samples' highest: a peak between two samples counts too (for the
        // gateway and the departments, since they started: the modes before this one included).
        peaks.set(child.label, Math.max(peaks.get(child.label) ?? 0, now.hwm));
      }
      samples.push({ at: performance.now() - started, rss });
    }, 250);
    const code = await new Promise<number | null>((resolve) => cli.process.on("exit", resolve));
    clearInterval(sampler);
    const cpuOfCli = endedChildrenCpu() - endedBefore;
    const seconds = (performance.now() - started) / 1000;
    if (code !== 0) throw new Error(`verify failed (exit ${code}):\n${cli.tail()}`);
    console.log(`\n— ${mode} —\n${cli.tail().trim()}`);
    const rate = Math.round(ids.length / seconds);
    rows.push(
      `${mode.padEnd(10)} ${String(ids.length).padStart(9)} ${seconds.toFixed(1).padStart(8)} s ${String(rate).padStart(8)} subjects/s`,
    );
    console.log(
      `\n${mode}: ${ids.length} subjects in ${seconds.toFixed(1)} s = ${rate} subjects/s`,
    );
    console.log(
      "process     CPU s   CPU %   peak RSS MB   RSS at 25% / 50% / 75% / 100% of the run",
    );
    let totalCpu = 0;
    for (const child of [...measured, cli]) {
      const after = usage(child.process.pid as number);
      const cpu =
        child === cli ? cpuOfCli : (after?.cpu ?? 0) - (before.get(child.label)?.cpu ?? 0);
      totalCpu += cpu;
      const at = (share: number) => {
        const sample = samples[Math.min(samples.length - 1, Math.floor(samples.length * share))];
        return (sample?.rss[child.label] ?? 0).toFixed(0).padStart(4);
      };
      console.log(
        `${child.label.padEnd(10)} ${cpu.toFixed(1).padStart(6)} ${((cpu / seconds) * 100).toFixed(0).padStart(6)}% ${(peaks.get(child.label) ?? 0).toFixed(0).padStart(12)}   ${at(0.25)} / ${at(0.5)} / ${at(0.75)} / ${at(0.999)}`,
      );
    }
    // The gateway's main thread (the event loop) apart from its other threads: proof signing,
    // V8's concurrent garbage collection, libuv.
    let main = 0;
    const others: number[] = [];
    for (const [tid, cpu] of threadCpu(gatewayPid)) {
      const spent = cpu - (gatewayThreads.get(tid) ?? 0);
      if (tid === gatewayPid) main = spent;
      else others.push(spent);
    }
    others.sort((a, b) => b - a);
    const busiest = others[0] ?? 0;
    const rest = others.slice(1).reduce((sum, cpu) => sum + cpu, 0);
    const micros = (seconds: number) => ((seconds / ids.length) * 1e6).toFixed(0);
    console.log(
      `gateway per subject: ${micros(main + busiest + rest)} µs of CPU = main thread ${micros(main)} µs + busiest other thread ${micros(busiest)} µs (with proofs: the signing thread) + the rest ${micros(rest)} µs (concurrent GC, I/O)`,
    );
    // CPU per subject does not depend on what else the machine runs; wall time does.
    const perSubject = (totalCpu / ids.length) * 1e6;
    const cores = availableParallelism();
    console.log(
      `all processes: ${totalCpu.toFixed(1)} CPU s = ${perSubject.toFixed(0)} µs of CPU per subject; ` +
        `${cores} cores fully used would verify at most ${Math.round((cores * 1e6) / perSubject)} subjects/s ` +
        `(load average during the run: ${loadavg()[0]?.toFixed(1)})`,
    );
  }
  console.log(
    `\nbench:verify ${POLICY}, ${ids.length} persons, on ${values.on}, this machine:\n${rows.join("\n")}`,
  );
} catch (error) {
  console.error(`bench:verify: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  if (removeDir) rmSync(dir, { recursive: true, force: true });
  else console.log(`data kept in ${dir}`);
}
