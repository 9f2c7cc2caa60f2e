/**
 * `npm start`: the whole platform on one machine. Seeds a demo population when DATA_DIR holds no
 * department database, starts the six department subgraphs (4001–4006, or the ports of
 * `HUKOU_URL` …) and the gateway (PORT, 4000), and stops them all on Ctrl-C.
 *
 * The gateway runs in a process of its own; the six departments share one (`npm run subgraph --
 * hukou traffic …`), each still its own server on its own port over its own database, reached by
 * the gateway over HTTP with signed requests as in production, where each department runs its
 * own. Sharing a process loads the department modules once instead of six times: start-up is
 * mostly module loading, and seven processes loading at once on a small machine took 12 s.
 *
 * `npm start` runs the bundle `dist/start.mjs` (see scripts/build.mjs), which starts the bundles
 * `dist/gateway.mjs` and `dist/subgraph.mjs`; run from source through tsx, it starts the sources.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEPARTMENTS, type Department, defaultPort, urlVariable } from "../common/departments.ts";
import { isProduction } from "../common/environment.ts";
import { databasePath, dataDir, seedingMarker } from "../common/sqlite.ts";
import { integer } from "../gateway/config.ts";
import { readyPorts } from "./supervision.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const children = new Map<string, ChildProcess>();
let stopping = false;
let exitCode = 0;

/** Defined as "1" in the bundles of scripts/build.mjs. */
const bundled = process.env.MIANZHENG_BUNDLE === "1";

/** Node's arguments to run `scripts/<name>.ts`: its bundle when this is one, else the source. */
function script(name: "gateway" | "subgraph" | "seed"): string[] {
  if (bundled && name !== "seed") return [`dist/${name}.mjs`];
  return ["--import", "tsx", `scripts/${name}.ts`];
}

/** A department's port: that of its `HUKOU_URL` … when set (the gateway reaches it there). */
function departmentPort(department: Department): number {
  const name = urlVariable(department);
  const variable = process.env[name];
  if (!variable) return defaultPort(department);
  if (!URL.canParse(variable)) {
    console.error(
      `[start] ${name} must be a URL such as http://127.0.0.1:4001/graphql, got "${variable}"`,
    );
    process.exit(2);
  }
  const url = new URL(variable);
  return Number(url.port || (url.protocol === "https:" ? 443 : 80));
}

/** Where a department listens: the host of its `HUKOU_URL` …, else 127.0.0.1. */
function departmentHost(department: Department): string {
  const variable = process.env[urlVariable(department)];
  // Checked by departmentPort first.
  const host = variable ? new URL(variable).hostname : "127.0.0.1";
  return host.replace(/^\[(.*)\]$/, "$1");
}

/**
 * Starts a child. A server (`supervised`) gets a process group of its own, so that Ctrl-C, which
 * signals the terminal's whole foreground group, reaches it once, through stopAll (a second signal
 * would make it exit at once, without finishing its requests in flight); its IPC channel says when
 * it is ready, and stops it should this process die without stopping it. The seeder stays in the
 * foreground group, as do the processes it forks, which Ctrl-C then stops directly.
 */
function run(
  label: string,
  command: string[],
  options: { env?: NodeJS.ProcessEnv; supervised?: boolean } = {},
): ChildProcess {
  const supervised = options.supervised ?? false;
  const child = spawn(process.execPath, command, {
    cwd: root,
    stdio: supervised ? ["ignore", "inherit", "inherit", "ipc"] : "inherit",
    env: { ...process.env, ...options.env },
    detached: supervised,
  });
  children.set(label, child);
  child.on("exit", (code, signal) => {
    children.delete(label);
    if (stopping) {
      // Stopped, but not cleanly (its ledger would not close, it was killed at the deadline):
      // whoever stopped the platform is told so.
      // SIGTERM ending a process that had not yet installed its handlers (stopped while starting)
      // is a clean stop; the deadline's SIGKILL or a failed close is not.
      if (label !== "seed" && ((code !== null && code !== 0) || signal === "SIGKILL")) {
        console.error(`[start] ${label} did not stop cleanly (${signal ?? `code ${code}`})`);
        exitCode = Math.max(exitCode, 1);
      }
      if (label === "gateway") stopDepartments();
      if (children.size === 0) process.exit(exitCode);
      return;
    }
    if (label === "seed") {
      if (code !== 0) console.error(`[start] seed exited (${signal ?? `code ${code}`})`);
      return;
    }
    // A department process or the gateway died: half a platform would still say "ready" for the
    // rest (the gateway's circuits close only on the next failed call). Stop it all.
    console.error(`[start] ${label} exited (${signal ?? `code ${code}`}); stopping the platform`);
    stopAll(1);
  });
  return child;
}

/**
 * How long the departments and the gateway may take to be ready (`START_TIMEOUT_S`, 60 s): a
 * first start on a large data directory made by an earlier version (an index built, a ledger
 * migrated) may need longer; a process that hangs must not be waited for forever.
 */
const readyTimeoutS = (() => {
  const value = process.env.START_TIMEOUT_S ?? "60";
  const seconds = Number(value);
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    console.error(`[start] START_TIMEOUT_S must be a number of seconds above 0, got "${value}"`);
    process.exit(2);
  }
  return seconds;
})();

// A timer longer than 2^31 − 1 ms fires at once in Node: a very long wait is the longest it takes.
function ready(
  label: string,
  timeoutMs = Math.min(readyTimeoutS * 1000, 2 ** 31 - 1),
): Promise<Record<string, number>> {
  const child = children.get(label);
  if (!child) return Promise.reject(new Error(`${label} exited before it was ready`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `${label} was not ready within ${timeoutMs / 1000} s (START_TIMEOUT_S gives it longer)`,
          ),
        ),
      timeoutMs,
    );
    child.on("message", (message) => {
      const ports = readyPorts(message);
      if (!ports) return;
      clearTimeout(timer);
      resolve(ports);
    });
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`${label} exited before it was ready`));
    });
  });
}

/**
 * The gateway first: the requests it is answering still need the departments. The departments
 * (and a seed under way) once it has exited.
 */
function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  if (children.size === 0) process.exit(exitCode);
  const gateway = children.get("gateway");
  if (!gateway) {
    stopDepartments();
    return;
  }
  gateway.kill("SIGTERM");
  // A process that does not finish its requests in flight within 10 s is stopped outright (the
  // departments then get theirs, from stopDepartments).
  setTimeout(() => gateway.kill("SIGKILL"), 10_000).unref();
}

function stopDepartments(): void {
  for (const [label, child] of children) if (label !== "gateway") child.kill("SIGTERM");
  // Their own 10 s from now, not what is left of the gateway's.
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
  }, 10_000).unref();
}

process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

// Read before anything is written: a malformed HUKOU_URL … stops here, not after a seed.
const departments = DEPARTMENTS.map((department) => `${department}:${departmentPort(department)}`);
// The departments listen where the gateway will call them (their URLs, 127.0.0.1 by default),
// not on HOST, which is the gateway's: with HOST=::1 they listened where it never called.
const LOOPBACK = /^(localhost|127(\.\d+){3}|::1)$/;
const named = new Set(DEPARTMENTS.map(departmentHost));
// localhost here, 127.0.0.1 there: all this machine, where "localhost" listens on both.
const departmentHosts =
  named.size > 1 && [...named].every((host) => LOOPBACK.test(host))
    ? new Set(["localhost"])
    : named;
if (departmentHosts.size > 1) {
  console.error(
    `[start] npm start runs the six departments in one process on one address, but their URLs name ${[...departmentHosts].join(", ")}`,
  );
  process.exit(2);
}
const [departmentsHost] = departmentHosts;

let production: boolean;
let port: number;
try {
  production = isProduction();
  port = integer("PORT", 4000);
} catch (error) {
  console.error(`[start] ${(error as Error).message}`);
  process.exit(2);
}

const dir = dataDir();
const interrupted = existsSync(seedingMarker(dir));
if (interrupted || !DEPARTMENTS.some((department) => existsSync(databasePath(department, dir)))) {
  if (production) {
    // A volume that failed to mount must not come up serving synthetic people to real desks.
    console.error(
      `[start] ${dir} holds no department database (or an interrupted demo seed); in production npm start does not seed a demo population: import the departments' exports (npm run import) or point DATA_DIR at their databases`,
    );
    process.exit(2);
  }
  const persons = process.env.SEED_PERSONS ?? "20000";
  console.log(
    interrupted
      ? `[start] the demo population of ${dir} was being written when it stopped: seeding ${persons} demo persons again`
      : `[start] ${dir} holds no department database: seeding ${persons} demo persons`,
  );
  const seed = run("seed", [...script("seed"), "--persons", persons]);
  const code = await new Promise<number | null>((resolve) => seed.on("exit", resolve));
  if (stopping) await new Promise(() => {}); // stopAll exits once every child has
  if (code !== 0) {
    console.error("[start] seeding failed");
    process.exit(1);
  }
}

try {
  // Everything starts at once: the gateway plans from the supergraph file and needs no department
  // to start, so loading its modules overlaps with the departments'. PORT is the gateway's; the
  // departments' ports are given with their names. A department asked for port 0 (tests, several
  // platforms on one machine) listens where the system puts it, which the gateway must be told:
  // the gateway then starts once the departments are ready.
  run("departments", [...script("subgraph"), ...departments], {
    env: { PORT: undefined, HOST: departmentsHost },
    supervised: true,
  });
  const anyPort = DEPARTMENTS.some((department) => departmentPort(department) === 0);
  const departmentsReady = ready("departments");
  const gatewayEnv: NodeJS.ProcessEnv = { PORT: String(port) };
  if (anyPort) {
    const ports = await departmentsReady;
    for (const department of DEPARTMENTS) {
      const name = urlVariable(department);
      if (departmentPort(department) !== 0 || !process.env[name]) continue;
      const listening = ports[department];
      if (!listening) throw new Error(`the departments did not say where ${department} listens`);
      const url = new URL(process.env[name]);
      url.port = String(listening);
      gatewayEnv[name] = url.toString();
    }
  }
  run("gateway", script("gateway"), { env: gatewayEnv, supervised: true });
  const [departmentPorts, gatewayPorts] = await Promise.all([departmentsReady, ready("gateway")]);
  console.log(
    [
      "",
      "Mianzheng is running:",
      `  gateway    http://localhost:${gatewayPorts.gateway ?? port}/graphql   (open it in a browser for GraphiQL)`,
      ...DEPARTMENTS.map(
        (department) =>
          `  ${department.padEnd(10)} http://localhost:${departmentPorts[department] ?? departmentPort(department)}/graphql   (signed requests from the gateway only)`,
      ),
      `  data       ${dir}`,
      "Press Ctrl-C to stop.",
      "",
    ].join("\n"),
  );
} catch (error) {
  if (!stopping) {
    console.error(`[start] ${(error as Error).message}`);
    stopAll(1);
  }
}
