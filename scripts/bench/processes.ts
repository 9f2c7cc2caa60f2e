/**
 * The benchmark's processes: each subgraph, each gateway and the load generator run in a process
 * of their own, as in production; this module starts them, waits for them, measures their memory
 * and stops them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Running {
  label: string;
  child: ChildProcess;
  /** Last lines the process wrote, shown when it fails. */
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Node flags before the script (e.g. `--cpu-prof`). */
  nodeFlags?: string[];
  /** Load the script through tsx (TypeScript); default true. */
  tsx?: boolean;
  /** Pass stdout through to a callback instead of keeping its tail. */
  onStdout?: (chunk: string) => void;
}

/**
 * Every process a bench started and not yet reaped, stopped when the bench stops however it
 * stops: at its end, on an error, or by SIGINT/SIGTERM from outside (a timeout, a CI job
 * cancelled), so that no department, gateway or load generator lives on holding ports and cores.
 */
export class BenchProcesses {
  private readonly running: Running[] = [];
  /** Set once stopping: nothing is started after that. */
  private stopping = false;

  /** Whether `stopAll` has begun (the steps under way then fail, and are not worth a trace). */
  get isStopping(): boolean {
    return this.stopping;
  }

  /**
   * `startNode`, registered for stopping; refused once the bench is stopping. A bound function,
   * so that it can be handed on as it is (`benchPopulation`'s `start`).
   */
  readonly start = (...args: Parameters<typeof startNode>): Running => {
    if (this.stopping) throw new Error("the bench is stopping");
    const running = startNode(...args);
    this.running.push(running);
    running.child.once("exit", () => {
      const at = this.running.indexOf(running);
      if (at >= 0) this.running.splice(at, 1);
    });
    return running;
  };

  /** Stops every process started; none starts after. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    // Stopping one can let the bench go on to its next step, which `start` then refuses.
    while (this.running.length > 0) {
      await Promise.all(this.running.map((running) => running.stop()));
    }
  }

  /** On SIGINT or SIGTERM: `stop` (which should call `stopAll`), then exit 130 or 143. */
  stopOnSignals(log: (message: string) => void, stop: () => Promise<void> = () => this.stopAll()) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        log(`${signal}: stopping every process started`);
        void stop().finally(() => {
          process.exit(signal === "SIGINT" ? 130 : 143); // 128 + the signal's number
        });
      });
    }
  }
}

/** Runs `node [--import tsx] script args` with the project root as working directory. */
export function startNode(
  label: string,
  script: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Running {
  const flags = [
    ...(options.nodeFlags ?? []),
    ...((options.tsx ?? true) ? ["--import", "tsx"] : []),
  ];
  const child = spawn(process.execPath, [...flags, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let tail = "";
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", (chunk: Buffer) =>
    options.onStdout ? options.onStdout(chunk.toString()) : keep(chunk),
  );
  child.stderr?.on("data", keep);
  let done = false;
  const exit = new Promise<void>((resolve) =>
    child.on("exit", () => {
      done = true;
      resolve();
    }),
  );
  return {
    label,
    child,
    output: () => tail,
    exited: () => done,
    async stop() {
      if (done) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Waits until `probe` resolves true, failing early when the process exits. */
export async function waitUntil(
  running: Running,
  probe: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (running.exited()) {
      throw new Error(`${running.label} exited before it was ready:\n${running.output()}`);
    }
    try {
      if (await probe()) return performance.now() - started;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(
    `${running.label} was not ready within ${timeoutMs / 1000} s:\n${running.output()}`,
  );
}

/** The pids of a process and all its descendants (cluster workers, a CLI's forked server). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {}
  }
  const tree: number[] = [];
  const visit = (id: number) => {
    tree.push(id);
    for (const child of children.get(id) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/** Peak resident memory (VmHWM) of one process, bytes; 0 when it is gone. */
export function peakRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Peak resident memory of a process tree: the sum of each process's own peak, and who it was. */
export function treePeakRss(pid: number): {
  bytes: number;
  processes: number;
  byProcess: Array<{ command: string; bytes: number }>;
} {
  const byProcess = processTree(pid).map((id) => {
    let command = "";
    try {
      command = readFileSync(`/proc/${id}/cmdline`, "utf8")
        .replaceAll("\0", " ")
        .trim()
        .slice(0, 120);
    } catch {}
    return { command, bytes: peakRss(id) };
  });
  return {
    bytes: byProcess.reduce((sum, entry) => sum + entry.bytes, 0),
    processes: byProcess.length,
    byProcess,
  };
}

const TICKS_PER_SECOND = 100;

/** CPU time a process has used so far, ms, in user and in kernel mode; zeros when it is gone. */
export function cpuSplitMs(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
    return {
      user: (Number(fields[11]) * 1000) / TICKS_PER_SECOND,
      system: (Number(fields[12]) * 1000) / TICKS_PER_SECOND,
    };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** CPU time (user + system) a process has used so far, ms; 0 when it is gone. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuSplitMs(pid);
  return user + system;
}

/** CPU time of a process tree so far, ms. */
export function treeCpuMs(pid: number): number {
  return processTree(pid).reduce((sum, id) => sum + cpuMs(id), 0);
}

/**
 * CPU time of the whole machine so far, ms over all cores (from /proc/stat): `busy`, what its
 * processes and the kernel ran, and `stolen`, what the hypervisor gave to other guests while this
 * one had work (steal). Apart, since a contended host shows as steal, not as a process here: on
 * the sixteenth machine up to 41 % was stolen, in slices that served a third as much.
 */
export function machineCpuMs(): { busy: number; stolen: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  return {
    busy: ms((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)),
    stolen: ms(steal ?? 0),
  };
}

/** File data written but not yet on disk (Dirty + Writeback from /proc/meminfo), bytes. */
export function unwrittenBytes(): number {
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(meminfo)?.[1] ?? 0);
  return (kb("Dirty") + kb("Writeback")) * 1024;
}
