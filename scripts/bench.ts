/**
 * `npm run bench [-- --persons N] [--seed S] [--json PATH] [--quick] [--seconds S]
 * [--gateways a,b] [--scenarios a,b] [--profile] [--subgraph-processes N] [--rounds N]
 * [--rate interactive:N,batch:M]
 * [--security-pairs N [--pair-seconds S] [--pair-env NAME=VALUE,…]]`: the gateways
 * side by side against the same six subgraphs over the same seeded population.
 *
 * Seeds the population once per (N, S) into `.bench/` (reruns reuse it), builds the bundles, starts
 * the six subgraphs once from theirs (as `npm start` does), each on a free port, dealt over one
 * process per core (`--subgraph-processes`: 1 as `npm start` deals them, 6 for one each), then for
 * each gateway: starts it in its own process and, for each scenario, checks that its answers to
 * sample requests equal the first gateway's (the baseline's), warms it up, measures it with
 * the load generator in a process of its own (autocannon; requests it paces itself with `--rate`)
 * and reads its peak RSS and the CPU every process used per request; then stops it. Prints a
 * table and writes the same as JSON with `--json`. The last line reads `interactive ratio X,
 * batch ratio Y` (mianzheng with security on against the Apollo baseline).
 *
 * `--quick` (small population, short runs, baseline and mianzheng only) is for CI: it checks that
 * both answered every sample identically and every request without error, and exits non-zero
 * otherwise; it asserts no speed.
 *
 * `--rounds N` repeats the comparison N times, the gateways in turn within each round, and shows
 * each gateway's median round (a shared machine's speed drifts by tens of percent over minutes;
 * measured in alternation, every gateway sees the same drift).
 *
 * `--security-pairs N` then measures what security costs more closely: mianzheng with security on
 * and off side by side, loaded in turn in N pairs of slices of `--pair-seconds` per scenario
 * (`securityInPairs`); with `--pair-env`, security on against security on with other settings
 * (an A/B of a setting).
 *
 * `--profile` runs mianzheng and the subgraphs under `node --cpu-prof` and keeps the profiles
 * (summarise one with `npx tsx scripts/bench/profile-summary.ts <file> [top] [skip-seconds]`);
 * `BENCH_GATEWAY_FLAGS` adds Node flags to mianzheng's process, for experiments.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual, parseArgs } from "node:util";
import { buildSync } from "esbuild";
import { DEPARTMENTS, type Department, urlVariable } from "../common/departments.ts";
import { SUPERGRAPH_PATH } from "../gateway/compose.ts";
import { readSupergraph } from "../gateway/supergraph.ts";
import { readAnswerDigests } from "./bench/answers.ts";
import {
  describeFigures,
  type GatewayFigures,
  gatewayFigures,
  readGatewayCounters,
} from "./bench/gateway-figures.ts";
import type { LoadJob, LoadResult } from "./bench/load.ts";
import { BENCH_DIR, benchPopulation } from "./bench/population.ts";
import {
  BenchProcesses,
  cpuMs,
  freePort,
  machineCpuMs,
  ROOT,
  type Running,
  treeCpuMs,
  treePeakRss,
  unwrittenBytes,
  waitUntil,
} from "./bench/processes.ts";
import { idsAt, type ScenarioName, scenario } from "./bench/scenarios.ts";
import { medianInterval, middle } from "./bench/statistics.ts";

const USAGE = `usage: npm run bench -- [--persons N] [--seed S] [--json PATH] [--quick] [--seconds S]
  [--warmup S] [--gateways apollo,hive,mianzheng,mianzheng-open] [--scenarios interactive,batch]
  [--profile] [--subgraph-processes N] [--rounds N] [--rate interactive:N,batch:M]
  [--security-pairs N [--pair-seconds S] [--pair-env NAME=VALUE,…]]`;

const { values } = parseArgs({
  options: {
    persons: { type: "string" },
    seed: { type: "string", default: "1" },
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    seconds: { type: "string" },
    warmup: { type: "string" },
    gateways: { type: "string" },
    scenarios: { type: "string" },
    profile: { type: "boolean", default: false },
    "subgraph-processes": { type: "string" },
    rounds: { type: "string" },
    rate: { type: "string" },
    "security-pairs": { type: "string" },
    "pair-seconds": { type: "string" },
    "pair-env": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const quick = values.quick;
const persons = Number(values.persons ?? (quick ? 3000 : 200_000));
const seed = Number(values.seed);
const seconds = Number(values.seconds ?? (quick ? 1 : 20));
const warmupSeconds = Number(values.warmup ?? (quick ? 1 : 5));
/**
 * The six departments share the machine with the gateway and the load generator: dealt over one
 * process per core rather than six, they do not spend the cores waking each other (see README,
 * Performance). Every gateway is measured against the same processes.
 */
const subgraphProcesses = Number(
  values["subgraph-processes"] ?? Math.min(DEPARTMENTS.length, availableParallelism()),
);
/**
 * Rounds of the whole comparison: every gateway is measured once per round, in turn (in reverse
 * order every other round), and each row of the table is its median round. A shared machine's
 * speed drifts over minutes; measured in alternation, the gateways see the same drift and their
 * ratios hold.
 */
const rounds = Number(values.rounds ?? 1);
/**
 * Pairs of slices measuring what security costs (see `securityInPairs`); 0: only the rounds'
 * figure.
 */
const securityPairs = Number(values["security-pairs"] ?? 0);
/**
 * How long each slice of a pair lasts; `--seconds` unless given. Slices seconds apart meet the
 * same machine: in steady phases the median of twenty pairs of 3 s scattered less than that of
 * five of 20 s in the same time, though not in a noisy one (docs/performance.md, "Twenty pairs
 * of three seconds, and gathering a wave").
 */
const pairSeconds = Number(values["pair-seconds"] ?? seconds);
/**
 * `--pair-env AUDIT_SYNC=normal,…`: the pairs compare mianzheng with security on against itself
 * with these settings (security still on) instead of against security off — an A/B of one
 * setting, measured the same way as security's cost.
 */
const pairEnv: Record<string, string> | null = values["pair-env"]
  ? Object.fromEntries(
      values["pair-env"].split(",").map((setting) => {
        const at = setting.indexOf("=");
        return at > 0 ? [setting.slice(0, at), setting.slice(at + 1)] : ["", setting];
      }),
    )
  : null;
/** What the pairs compare security on with, as the log and the JSON name it. */
const pairedWith = pairEnv
  ? `on with ${Object.entries(pairEnv)
      .map(([name, value]) => `${name}=${value}`)
      .join(" ")}`
  : "off";
/**
 * A fixed offered rate per scenario (requests/s, open loop), e.g. `interactive:2000`: every
 * configuration then serves the same load, so its CPU per request compares directly (closed
 * loop, a slower configuration also gets smaller coalesced batches, which costs it more per
 * request). Scenarios not named stay closed-loop.
 */
const rates = new Map(
  (values.rate?.split(",") ?? []).map((pair) => {
    const [name, value] = pair.split(":");
    return [name as ScenarioName, Number(value)] as const;
  }),
);
if (
  ![persons, seed, seconds, warmupSeconds, pairSeconds].every(
    (n) => Number.isInteger(n) && n >= 0,
  ) ||
  !(Number.isInteger(rounds) && rounds >= 1) ||
  !(Number.isInteger(securityPairs) && securityPairs >= 0) ||
  (pairEnv !== null &&
    (securityPairs === 0 ||
      Object.keys(pairEnv).some((name) => !/^[A-Z][A-Z0-9_]*$/.test(name)) ||
      "SECURITY" in pairEnv)) ||
  [...rates].some(
    ([name, rate]) =>
      !["interactive", "batch"].includes(name) || !(Number.isInteger(rate) && rate > 0),
  ) ||
  !(
    Number.isInteger(subgraphProcesses) &&
    subgraphProcesses >= 1 &&
    subgraphProcesses <= DEPARTMENTS.length
  )
) {
  console.error(USAGE);
  process.exit(2);
}

/** The desk every request comes from: the development demo desk, every scope. */
const DESK_HEADERS = { authorization: "Bearer dev-desk-key", "x-purpose": "demo" };

type GatewayName = "apollo" | "hive" | "mianzheng" | "mianzheng-open";
const GATEWAYS: Record<GatewayName, string> = {
  apollo: "baseline: @apollo/server 5 + @apollo/gateway 2.14, defaults",
  hive: "Hive Gateway (CLI, defaults)",
  mianzheng: "mianzheng, security on",
  "mianzheng-open": "mianzheng, security off",
};
// Quick runs (CI) compare the baseline with mianzheng as it runs in production.
const gatewayNames = (values.gateways?.split(",") ??
  (quick ? ["apollo", "mianzheng"] : Object.keys(GATEWAYS))) as GatewayName[];
const scenarioNames = (values.scenarios?.split(",") ?? ["interactive", "batch"]) as ScenarioName[];
for (const name of gatewayNames) {
  if (!(name in GATEWAYS)) throw new Error(`unknown gateway "${name}"; ${USAGE}`);
}

const runDir = join(BENCH_DIR, `run-${process.pid}`);
mkdirSync(runDir, { recursive: true });
/** Every process started and not yet reaped: stopped when the bench stops, however it stops. */
const processes = new BenchProcesses();
const { start } = processes;

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Subgraphs and gateways.

async function ready(url: string): Promise<boolean> {
  const response = await fetch(url);
  return response.ok;
}

const subgraphPids: number[] = [];

/** Departments dealt round-robin to the processes (six processes: one each). */
function subgraphGroups(): Department[][] {
  const groups: Department[][] = Array.from({ length: subgraphProcesses }, () => []);
  for (const [index, department] of DEPARTMENTS.entries()) {
    groups[index % subgraphProcesses]?.push(department);
  }
  return groups;
}

async function startSubgraphs(dir: string): Promise<Record<Department, string>> {
  const urls = {} as Record<Department, string>;
  const ports = {} as Record<Department, number>;
  for (const department of DEPARTMENTS) {
    ports[department] = await freePort();
    urls[department] = `http://127.0.0.1:${ports[department]}/graphql`;
  }
  const started = subgraphGroups().map((group) => {
    const name = group.join("+");
    // As `npm start` runs the departments: their bundle (built by `main` before anything starts,
    // so that no two processes rebuild it at once).
    const subgraph = start(
      name,
      "dist/subgraph.mjs",
      group.length === 1
        ? [group[0] as Department, "--port", String(ports[group[0] as Department])]
        : group.map((department) => `${department}:${ports[department]}`),
      {
        tsx: false,
        env: { DATA_DIR: dir, LOG_LEVEL: "warn", NODE_ENV: "development" },
        nodeFlags: values.profile
          ? ["--cpu-prof", `--cpu-prof-dir=${join(runDir, "profiles", name)}`]
          : [],
      },
    );
    subgraphPids.push(subgraph.child.pid as number);
    return { subgraph, group };
  });
  await Promise.all(
    started.flatMap(({ subgraph, group }) =>
      group.map((department) =>
        waitUntil(subgraph, () => ready(`http://127.0.0.1:${ports[department]}/ready`)),
      ),
    ),
  );
  return urls;
}

/**
 * The supergraph the baselines serve: the checked-in one as mianzheng's planner receives it (stock
 * `@apollo/gateway` refuses a `for: SECURITY` link), pointed at this run's subgraphs.
 */
function baselineSupergraph(urls: Record<Department, string>): string {
  const sdl = readSupergraph(readFileSync(SUPERGRAPH_PATH, "utf8")).plannerSdl.replace(
    /@join__graph\(name: "(\w+)", url: "[^"]*"\)/g,
    (whole, name: string) =>
      name in urls ? `@join__graph(name: "${name}", url: "${urls[name as Department]}")` : whole,
  );
  const file = join(runDir, "supergraph.graphql");
  writeFileSync(file, sdl);
  return file;
}

/**
 * The baselines' own code (the gateway signature, their setup), bundled like mianzheng's so that
 * every gateway runs as plain JavaScript: under tsx, a process carries its loader's hooks thread
 * (another V8 isolate) and, at a cache miss, an esbuild child, which would add to the baselines'
 * memory and CPU what mianzheng's bundle does not pay. Their packages are imported from
 * `node_modules` as they are published.
 */
function bundleBaselines(): { apollo: string; hiveConfig: string } {
  const bundle = (source: string, name: string) => {
    const outfile = join(runDir, name);
    buildSync({
      entryPoints: [join(ROOT, source)],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      logLevel: "warning",
    });
    return outfile;
  };
  return {
    apollo: bundle("scripts/bench/apollo-gateway.ts", "apollo-gateway.mjs"),
    hiveConfig: bundle("scripts/bench/hive-gateway.config.ts", "hive-gateway.config.mjs"),
  };
}

/** Built when a baseline is first started. */
let baselines: { apollo: string; hiveConfig: string } | null = null;

interface GatewayProcess {
  running: Running;
  url: string;
}

async function startGateway(
  name: GatewayName,
  urls: Record<Department, string>,
  supergraphFile: string,
  round: number,
  /** Settings of a variant (`--pair-env`), which also gets a data directory of its own. */
  variant: Record<string, string> | null = null,
): Promise<GatewayProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const env: NodeJS.ProcessEnv = { PORT: String(port), NODE_ENV: "development" };
  let running: Running;
  baselines ??= bundleBaselines();
  if (name === "apollo") {
    running = start(name, baselines.apollo, [], {
      tsx: false,
      env: { ...env, SUPERGRAPH_FILE: supergraphFile },
    });
  } else if (name === "hive") {
    running = start(
      name,
      "node_modules/@graphql-hive/gateway/dist/bin.js",
      [
        "supergraph",
        supergraphFile,
        "--config-path",
        baselines.hiveConfig,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
      ],
      { tsx: false, env: { ...env, DEPARTMENT_URLS: JSON.stringify(urls) } },
    );
  } else {
    // A fresh data directory (audit ledger) per start: every round measures the same gateway, not
    // one whose ledger holds the previous rounds' million entries still being indexed.
    const dataName = variant ? `${name}-variant` : name;
    const gatewayData = join(runDir, `${dataName}-data-${round}`);
    rmSync(join(runDir, `${dataName}-data-${round - 1}`), { recursive: true, force: true });
    mkdirSync(gatewayData, { recursive: true });
    // As `npm start` runs it: the bundle, built by `main` before anything starts.
    running = start(name, "dist/gateway.mjs", [], {
      tsx: false,
      env: {
        ...env,
        DATA_DIR: gatewayData,
        LOG_LEVEL: "warn",
        SECURITY: name === "mianzheng-open" ? "off" : "on",
        ...Object.fromEntries(DEPARTMENTS.map((d) => [urlVariable(d), urls[d]])),
        ...variant,
      },
      nodeFlags: [
        ...(process.env.BENCH_GATEWAY_FLAGS?.split(" ").filter(Boolean) ?? []),
        ...(values.profile
          ? ["--cpu-prof", `--cpu-prof-dir=${join(runDir, "profiles", name)}`]
          : []),
      ],
    });
  }
  await waitUntil(running, async () => (await post(url, "{ __typename }", {})).status === 200);
  return { running, url };
}

async function post(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = DESK_HEADERS,
): Promise<{ status: number; body: { data?: unknown; errors?: unknown[] } }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: { errors: [text.slice(0, 300)] } };
  }
}

/**
 * The digest of every complete answer received so far, per scenario, by the position of the ids
 * the request asked (which, the scenario's request size being fixed, names the request), with who
 * answered it first. Every later answer to the same request — from any gateway, round, warm-up or
 * slice — must be the same bytes: the samples compare a few answers field by field, this compares
 * all of them.
 */
const answered = new Map<ScenarioName, Map<number, { digest: string; by: string }>>();

/** A load's result, with how its answers compared with earlier answers to the same requests. */
interface CheckedLoad extends LoadResult {
  /** Answers that another measurement had received for the same request, and compared equal. */
  answersCompared: number;
  /** The first answer that differed from an earlier one, described; null when none did. */
  differs: string | null;
}

/** Runs one load (`by` names it in a report of differing answers) and compares its answers. */
async function runLoad(job: LoadJob, by: string): Promise<CheckedLoad> {
  const file = join(runDir, `load-${job.scenario}.json`);
  const answersFile = join(runDir, `answers-${job.scenario}.bin`);
  writeFileSync(file, JSON.stringify({ ...job, answersFile }));
  let out = "";
  const load = start("load", "scripts/bench/load.ts", [file], {
    onStdout: (chunk) => {
      out += chunk;
    },
  });
  const code = await new Promise<number | null>((resolve) => load.child.on("exit", resolve));
  const line = out.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !line.startsWith("{"))
    throw new Error(`load generator failed:\n${load.output()}`);
  const result = JSON.parse(line) as LoadResult;
  const seen = answered.get(job.scenario) ?? new Map<number, { digest: string; by: string }>();
  answered.set(job.scenario, seen);
  let answersCompared = 0;
  let differs: string | null = null;
  for (const [position, digest] of readAnswerDigests(answersFile)) {
    const earlier = seen.get(position);
    if (!earlier) seen.set(position, { digest, by });
    else if (earlier.digest === digest) answersCompared++;
    else
      differs ??= `the answer to the request for the ids from position ${position} differs from ${earlier.by}'s`;
  }
  rmSync(answersFile, { force: true });
  return { ...result, answersCompared, differs };
}

// ---------------------------------------------------------------------------------------------
// The run.

/** A scenario's load against a gateway, from the desk every request comes from. */
function loadJob(
  gateway: GatewayProcess,
  scenarioName: ScenarioName,
  population: { day: string; idsFile: string },
): Omit<LoadJob, "seconds" | "offset"> {
  return {
    url: gateway.url,
    scenario: scenarioName,
    day: population.day,
    quick,
    idsFile: population.idsFile,
    headers: DESK_HEADERS,
    rate: rates.get(scenarioName) ?? 0,
  };
}

/** Every failed request of a load: non-200 answers, transport failures, incomplete answers. */
function failedRequests(result: LoadResult): number {
  return result.errors.non200 + result.errors.transport + result.errors.incomplete;
}

/** CPU per request of every process together (gateway, departments, load generator), ms. */
function totalCpu(perRequest: Row["cpuMsPerRequest"]): number {
  return perRequest.gateway + perRequest.subgraphs + perRequest.loadGenerator;
}

/** One measurement of a running gateway: `length` s of load, and the CPU every process used. */
async function measureLoad(
  gateway: GatewayProcess,
  job: Omit<LoadJob, "seconds" | "offset">,
  offset: number,
  by: string,
  length = seconds,
): Promise<{
  result: CheckedLoad;
  cpuPerRequest: Row["cpuMsPerRequest"];
  foreignCpuShare: number;
  stolenCpuShare: number;
  figures: GatewayFigures | null;
}> {
  const gatewayPid = gateway.running.child.pid as number;
  const subgraphsCpu = () => subgraphPids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  // Read outside the CPU counted: a scrape is a request of its own.
  const counters = await readGatewayCounters(gateway.url);
  const before = {
    gateway: treeCpuMs(gatewayPid),
    subgraphs: subgraphsCpu(),
    machine: machineCpuMs(),
    self: process.cpuUsage(),
    at: performance.now(),
  };
  const result = await runLoad({ ...job, seconds: length, offset }, by);
  const self = process.cpuUsage(before.self);
  const machine = machineCpuMs();
  const used = {
    gateway: treeCpuMs(gatewayPid) - before.gateway,
    subgraphs: subgraphsCpu() - before.subgraphs,
    machine: machine.busy - before.machine.busy,
    stolen: machine.stolen - before.machine.stolen,
    self: (self.user + self.system) / 1000,
    wall: performance.now() - before.at,
  };
  // The load generator's whole process, its start included (the load alone is `cpuMs`).
  const foreign = used.machine - used.gateway - used.subgraphs - used.self - result.processCpuMs;
  const requests = Math.max(1, result.requests);
  const machineMs = used.wall * cpus().length;
  const figures = gatewayFigures(counters, await readGatewayCounters(gateway.url), length);
  return {
    result,
    cpuPerRequest: {
      gateway: used.gateway / requests,
      subgraphs: used.subgraphs / requests,
      loadGenerator: result.cpuMs / requests,
    },
    foreignCpuShare: Math.max(0, foreign) / machineMs,
    stolenCpuShare: used.stolen / machineMs,
    figures,
  };
}

interface Row {
  gateway: GatewayName;
  description: string;
  scenario: ScenarioName;
  unit: "requests/s" | "persons/s";
  perSecond: number;
  requests: number;
  latencyMs: { p50: number; p99: number; max: number };
  errors: number;
  errorDetail: LoadResult["errors"];
  sampleFailure: string | null;
  peakRssBytes: number;
  processes: number;
  peakRssByProcess: Array<{ command: string; bytes: number }>;
  /** CPU per request during the measurement, ms: the gateway's, and the six subgraphs' together. */
  cpuMsPerRequest: { gateway: number; subgraphs: number; loadGenerator: number };
  /** Share of the machine's CPU used by processes outside the benchmark during the measurement. */
  foreignCpuShare: number;
  /** Share of the machine's CPU the hypervisor gave to other guests meanwhile (steal). */
  stolenCpuShare: number;
  /** Where mianzheng's queries spent their time, from its metrics (null for the baselines). */
  figures: GatewayFigures | null;
  /**
   * The samples answered exactly as the baseline answered them, and every answer under load the
   * same as any earlier answer to the same request.
   */
  identical: boolean;
  mismatch: string | null;
  /** Answers under load compared equal with an earlier answer to the same request. */
  answersCompared: number;
  /** Throughput of every round (`--rounds`); the row shows the median one. */
  perRound: number[];
  /** p99 latency of every round, ms. */
  p99PerRound: number[];
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}

function table(rows: readonly Row[]): string {
  const header = [
    "scenario",
    "gateway",
    "throughput",
    "p50",
    "p99",
    "errors",
    "peak RSS",
    "CPU/request: gateway + subgraphs",
    "same data",
    "vs baseline",
  ];
  const lines = rows.map((row) => {
    const base = rows.find((r) => r.scenario === row.scenario && r.gateway === "apollo");
    return [
      row.scenario,
      row.description,
      `${Math.round(row.perSecond).toLocaleString("en")} ${row.unit}`,
      `${row.latencyMs.p50.toFixed(1)} ms`,
      `${row.latencyMs.p99.toFixed(1)} ms`,
      String(row.errors),
      `${mb(row.peakRssBytes)}${row.processes > 1 ? ` (${row.processes} proc)` : ""}`,
      `${row.cpuMsPerRequest.gateway.toFixed(2)} + ${row.cpuMsPerRequest.subgraphs.toFixed(2)} ms`,
      row.identical ? "yes" : "NO",
      // Rounds of both, or no ratio (a baseline that failed a round has none to pair with).
      base?.perRound.length === row.perRound.length
        ? `${middle(row.perRound.map((value, i) => value / (base.perRound[i] as number))).toFixed(2)}×`
        : "",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const format = (cells: string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [format(header), format(widths.map((w) => "-".repeat(w))), ...lines.map(format)].join(
    "\n",
  );
}

/**
 * One row per gateway and scenario: its round of median throughput, with the errors of every
 * round added up, the highest peak RSS, and whether every round answered as the baseline did.
 */
function medianRows(measured: readonly Row[]): Row[] {
  const groups = new Map<string, Row[]>();
  for (const row of measured) {
    const key = `${row.gateway}\u0000${row.scenario}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  return [...groups.values()].map((group) => {
    const sorted = [...group].sort((a, b) => a.perSecond - b.perSecond);
    const median = sorted[Math.floor((sorted.length - 1) / 2)] as Row;
    const worst = group.reduce((a, b) => (b.peakRssBytes > a.peakRssBytes ? b : a));
    return {
      ...median,
      errors: group.reduce((sum, row) => sum + row.errors, 0),
      sampleFailure: group.find((row) => row.sampleFailure)?.sampleFailure ?? null,
      peakRssBytes: worst.peakRssBytes,
      peakRssByProcess: worst.peakRssByProcess,
      identical: group.every((row) => row.identical),
      mismatch: group.find((row) => row.mismatch)?.mismatch ?? null,
      answersCompared: group.reduce((sum, row) => sum + row.answersCompared, 0),
      perRound: group.map((row) => row.perSecond),
      p99PerRound: group.map((row) => row.latencyMs.p99),
    };
  });
}

/**
 * Waits until the machine has been idle (under 5 % busy) for 3 s running, with the file data
 * written so far on disk (under 16 MiB dirty); 60 s at most. Once its gateway is quiet for two
 * of its 1 s ticks, the audit ledger's writer indexes what the last slice wrote, without pause —
 * after a batch slice some 200,000 entries, seconds of CPU: measured meanwhile, the other
 * gateway's slice paid for it (security's batch "cost" came out at −17 %, every slice of security
 * off that followed one with security on slower than every other). Under sustained load (the
 * rounds) that work waits, or falls in the same gateway's measurement.
 */
async function settle(): Promise<void> {
  const deadline = performance.now() + 60_000;
  let idleSeconds = 0;
  while (performance.now() < deadline) {
    // Whole seconds: /proc/stat counts in 10 ms ticks.
    const before = machineCpuMs().busy;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busy = (machineCpuMs().busy - before) / (1000 * cpus().length);
    const idle = busy < 0.05 && unwrittenBytes() < 16 * 1024 * 1024;
    idleSeconds = idle ? idleSeconds + 1 : 0;
    if (idleSeconds >= 3) return;
  }
  log("  (the machine did not become idle within 60 s; measuring anyway)");
}

interface PairedCost {
  /** Median over the pairs of 1 − on/off (throughput; CPU per request at a fixed rate). */
  median: number;
  /** 95 % confidence interval of that median (`medianInterval`); null for fewer than six pairs. */
  medianInterval: readonly [number, number] | null;
  perPair: number[];
  /**
   * The median of the pairs whose security-on process the bench started first, and of those whose
   * other side it started first (null for a half without pairs).
   */
  byStartOrder: { onStartedFirst: number | null; offStartedFirst: number | null };
  /** Mean CPU per request over every slice of each mode, ms (gateway + subgraphs + load). */
  cpuMsPerRequest: { on: number; off: number };
  /** p99 latency of each pair's slices, ms: what the setting does to the tail. */
  p99PerPair: { on: number[]; off: number[] };
  /** Where each pair's queries spent their time, by side (gateway metrics). */
  figuresPerPair: { on: Array<GatewayFigures | null>; off: Array<GatewayFigures | null> };
  errors: number;
  /** The first answer that differed from an earlier answer to the same request; null if none. */
  differs: string | null;
}

/**
 * What security costs, measured in pairs (`--security-pairs N`): mianzheng with security on and
 * off both running, each loaded in turn for `--pair-seconds` — on then off, then off then on,
 * and so on — N pairs per scenario after a warm-up of each. Slices seconds apart meet the same machine,
 * where rounds minutes apart do not (this machine's speed drifts by tens of percent over minutes,
 * so the rounds' figure swung between 4 and 42 % over runs). Each pair's cost is 1 − on/off of
 * its throughput (its CPU per request, on/off − 1, at a fixed `--rate`). Before every slice the
 * bench waits until the machine is idle (`settle`).
 *
 * The pairs come in two halves, each with a new pair of processes, started in opposite orders:
 * security on first for the first half, last for the second. A control: what looked like the
 * process started first leaning slower was processes fast or slow at random for their whole life
 * (V8 tenuring a gateway's requests, docs/performance.md "A gateway that tenured its requests"),
 * and twenty pairs of one pair of processes measure those two processes, whatever the interval
 * says. Each half's median is in the JSON (`byStartOrder`): two halves far apart mean the
 * processes differed.
 */
async function securityInPairs(
  urls: Record<Department, string>,
  supergraphFile: string,
  population: { day: string; idsFile: string },
  offset: number,
): Promise<Partial<Record<ScenarioName, PairedCost>>> {
  type Slice = Awaited<ReturnType<typeof measureLoad>>;
  interface Sides {
    on: Slice[];
    off: Slice[];
    /** Per pair: which side's process the bench started first. */
    startedFirst: Array<"on" | "off">;
    differs: string | null;
  }
  const sides = new Map<ScenarioName, Sides>(
    scenarioNames.map((name) => [name, { on: [], off: [], startedFirst: [], differs: null }]),
  );
  const halves = [
    { first: "on", pairs: Math.ceil(securityPairs / 2) },
    { first: "off", pairs: Math.floor(securityPairs / 2) },
  ] as const;
  let pairsBefore = 0;
  for (const [index, half] of halves.entries()) {
    if (half.pairs === 0) continue;
    const startSide = (side: "on" | "off") =>
      side === "on"
        ? startGateway("mianzheng", urls, supergraphFile, rounds + 1 + index)
        : // The other side: security off, or (`--pair-env`) security on with other settings.
          pairEnv
          ? startGateway("mianzheng", urls, supergraphFile, rounds + 1 + index, pairEnv)
          : startGateway("mianzheng-open", urls, supergraphFile, rounds + 1 + index);
    const firstStarted = await startSide(half.first);
    let secondStarted: GatewayProcess;
    try {
      secondStarted = await startSide(half.first === "on" ? "off" : "on");
    } catch (error) {
      await firstStarted.running.stop();
      throw error;
    }
    const on = half.first === "on" ? firstStarted : secondStarted;
    const off = half.first === "on" ? secondStarted : firstStarted;
    log(
      `  pairs ${pairsBefore + 1}…${pairsBefore + half.pairs}: security ${half.first === "on" ? "on" : pairedWith}'s process started first`,
    );
    try {
      for (const scenarioName of scenarioNames) {
        const measured = sides.get(scenarioName) as Sides;
        const jobOf = (gateway: GatewayProcess) => loadJob(gateway, scenarioName, population);
        for (const gateway of [on, off]) {
          if (warmupSeconds > 0) {
            const warmup = await runLoad(
              { ...jobOf(gateway), seconds: warmupSeconds, offset },
              `${gateway === on ? "mianzheng" : `mianzheng ${pairedWith}`}'s warm-up for the pairs`,
            );
            measured.differs ??= warmup.differs;
          }
        }
        for (let pair = pairsBefore; pair < pairsBefore + half.pairs; pair++) {
          // The same persons for both slices of a pair, other persons for every pair.
          const at = offset + pair * 10_000;
          // Within each half, alternately loaded first: an odd half is off by one pair.
          const order =
            (pair - pairsBefore) % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const);
          for (const mode of order) {
            const gateway = mode === "on" ? on : off;
            await settle();
            const by = `mianzheng ${mode === "on" ? "on" : pairedWith} in pair ${pair + 1}`;
            const slice = await measureLoad(gateway, jobOf(gateway), at, by, pairSeconds);
            measured.differs ??= slice.result.differs;
            measured[mode].push(slice);
          }
          measured.startedFirst.push(half.first);
          const [a, b] = [measured.on[pair] as Slice, measured.off[pair] as Slice];
          /** One figure of both slices, security on's first. */
          const both = (figure: (slice: Slice) => string) => `${figure(a)} against ${figure(b)}`;
          log(
            `  ${scenarioName} pair ${pair + 1}: on ${Math.round(a.result.requestsPerSecond)}, ${pairedWith} ${Math.round(b.result.requestsPerSecond)} requests/s; p99 ${both((s) => `${s.result.latencyMs.p99}`)} ms; CPU per request: gateway ${both((s) => s.cpuPerRequest.gateway.toFixed(3))}, departments ${both((s) => s.cpuPerRequest.subgraphs.toFixed(3))} ms; other processes ${both((s) => `${(100 * s.foreignCpuShare).toFixed(0)}%`)} of the machine, the hypervisor ${both((s) => `${(100 * s.stolenCpuShare).toFixed(0)}%`)}${a.figures && b.figures ? `; a query's execute ${both((s) => s.figures?.phaseMs.execute.toFixed(2) ?? "")}, record ${both((s) => s.figures?.phaseMs.record.toFixed(2) ?? "")} ms` : ""}`,
          );
        }
      }
    } finally {
      await Promise.all([on.running.stop(), off.running.stop()]);
    }
    pairsBefore += half.pairs;
  }

  const costs: Partial<Record<ScenarioName, PairedCost>> = {};
  for (const [scenarioName, measured] of sides) {
    const cpu = (slice: Slice) => totalCpu(slice.cpuPerRequest);
    const fixedRate = rates.has(scenarioName);
    const perPair = measured.on.map((slice, index) => {
      const other = measured.off[index] as Slice;
      return fixedRate
        ? cpu(slice) / cpu(other) - 1
        : 1 - slice.result.requestsPerSecond / other.result.requestsPerSecond;
    });
    const mean = (list: Slice[]) => list.reduce((sum, slice) => sum + cpu(slice), 0) / list.length;
    const errors = [...measured.on, ...measured.off].reduce(
      (sum, { result }) => sum + failedRequests(result),
      0,
    );
    const ofHalf = (first: "on" | "off") => {
      const values = perPair.filter((_, index) => measured.startedFirst[index] === first);
      return values.length > 0 ? middle(values) : null;
    };
    costs[scenarioName] = {
      median: middle(perPair),
      medianInterval: medianInterval(perPair),
      perPair,
      byStartOrder: { onStartedFirst: ofHalf("on"), offStartedFirst: ofHalf("off") },
      cpuMsPerRequest: { on: mean(measured.on), off: mean(measured.off) },
      p99PerPair: {
        on: measured.on.map((slice) => slice.result.latencyMs.p99),
        off: measured.off.map((slice) => slice.result.latencyMs.p99),
      },
      figuresPerPair: {
        on: measured.on.map((slice) => slice.figures),
        off: measured.off.map((slice) => slice.figures),
      },
      errors,
      differs: measured.differs,
    };
  }
  return costs;
}

async function main(): Promise<number> {
  const started = Date.now();
  const { dir, day, idsFile } = await benchPopulation({ persons, seed, log, start });
  // The bundles the departments and mianzheng run, fresh from the sources (a few seconds).
  execFileSync(process.execPath, [join(ROOT, "scripts/build.mjs")], { stdio: "inherit" });
  const ids = JSON.parse(readFileSync(idsFile, "utf8")) as string[];
  log(`population: ${ids.length} persons in ${dir}, reference day ${day}`);
  const urls = await startSubgraphs(dir);
  log(`subgraphs: ${DEPARTMENTS.map((d) => `${d} ${urls[d]}`).join(", ")}`);
  const supergraphFile = baselineSupergraph(urls);

  const rows: Row[] = [];
  let securityEnforced: boolean | null = null;
  // Measured requests ask about other persons than the samples and the warm-up.
  const measuredOffset = Math.floor(ids.length / 2);
  // The first gateway's answers (the baseline's, by default) are the reference of each scenario.
  const references = new Map<ScenarioName, unknown[]>();
  const measured: Row[] = [];
  for (let round = 1; round <= rounds; round++) {
    if (rounds > 1) log(`round ${round} of ${rounds}`);
    // Every other round in reverse (A B C D, D C B A, …): a machine that speeds up or slows down
    // across a round would otherwise favour whichever gateway is always measured first. The
    // baseline's answers, taken in round 1, stay the reference.
    const order = round % 2 === 1 ? gatewayNames : [...gatewayNames].reverse();
    for (const name of order) {
      log(GATEWAYS[name]);
      const gateway = await startGateway(name, urls, supergraphFile, round);
      try {
        for (const scenarioName of scenarioNames) {
          log(`  ${scenarioName}`);
          const work = scenario(scenarioName, day, quick);
          const sampleCount = quick ? 5 : 20;
          const samples = Array.from({ length: sampleCount }, (_, n) =>
            idsAt(ids, n * work.idsPerRequest, work.idsPerRequest),
          );
          if (name === "mianzheng" && securityEnforced === null) {
            const anonymous = await post(
              gateway.url,
              work.query,
              work.variables(samples[0] ?? []),
              {},
            );
            securityEnforced = anonymous.status === 401;
          }
          // Samples first: the same requests to every gateway, answers compared with the baseline's.
          const answers: unknown[] = [];
          let mismatch: string | null = null;
          for (const asked of samples) {
            const { status, body } = await post(gateway.url, work.query, work.variables(asked));
            answers.push(body.data ?? null);
            if (status !== 200 || body.errors) {
              mismatch ??= `HTTP ${status}: ${JSON.stringify(body).slice(0, 400)}`;
            }
          }
          const reference = references.get(scenarioName) ?? answers;
          references.set(scenarioName, reference);
          const identical = mismatch === null && isDeepStrictEqual(answers, reference);
          if (!identical && mismatch === null) {
            const index = answers.findIndex(
              (answer, i) => !isDeepStrictEqual(answer, reference?.[i]),
            );
            mismatch = `sample ${index} differs: ${JSON.stringify(answers[index]).slice(0, 300)} vs ${JSON.stringify(reference[index]).slice(0, 300)}`;
          }
          if (mismatch) log(`  answers differ from the baseline's: ${mismatch}`);

          const job = loadJob(gateway, scenarioName, { day, idsFile });
          // The warm-up asks about the persons after the samples', the measurement about others.
          if (warmupSeconds > 0) {
            const warmup = await runLoad(
              { ...job, seconds: warmupSeconds, offset: sampleCount * work.idsPerRequest },
              `${name}'s warm-up in round ${round}`,
            );
            mismatch ??= warmup.differs;
          }
          const { result, cpuPerRequest, foreignCpuShare, stolenCpuShare, figures } =
            await measureLoad(gateway, job, measuredOffset, `${name} in round ${round}`);
          mismatch ??= result.differs;
          if (result.differs) log(`  ${result.differs}`);
          const rss = treePeakRss(gateway.running.child.pid as number);
          const errors = failedRequests(result);
          const row: Row = {
            gateway: name,
            description: GATEWAYS[name],
            scenario: scenarioName,
            unit: work.unit === "persons" ? "persons/s" : "requests/s",
            perSecond: result.requestsPerSecond * work.idsPerRequest,
            requests: result.requests,
            latencyMs: result.latencyMs,
            errors,
            errorDetail: result.errors,
            sampleFailure: result.sampleFailure,
            peakRssBytes: rss.bytes,
            processes: rss.processes,
            peakRssByProcess: rss.byProcess,
            cpuMsPerRequest: cpuPerRequest,
            foreignCpuShare,
            stolenCpuShare,
            figures,
            identical: mismatch === null,
            mismatch,
            answersCompared: result.answersCompared,
            perRound: [],
            p99PerRound: [],
          };
          measured.push(row);
          log(
            `  ${Math.round(row.perSecond)} ${row.unit}, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, ${errors} errors, peak RSS ${mb(rss.bytes)}, CPU per request: gateway ${row.cpuMsPerRequest.gateway.toFixed(2)} ms, subgraphs ${row.cpuMsPerRequest.subgraphs.toFixed(2)} ms, load generator ${row.cpuMsPerRequest.loadGenerator.toFixed(2)} ms; other processes used ${(100 * row.foreignCpuShare).toFixed(0)}% of the machine, the hypervisor took ${(100 * row.stolenCpuShare).toFixed(0)}%`,
          );
          if (figures) log(`  ${describeFigures(figures)}`);
          if (result.sampleFailure) log(`  a failed answer: ${result.sampleFailure}`);
        }
      } finally {
        await gateway.running.stop();
        if (process.env.BENCH_DEBUG) log(gateway.running.output());
      }
    }
  }
  rows.push(...medianRows(measured));
  const paired =
    securityPairs > 0
      ? await securityInPairs(urls, supergraphFile, { day, idsFile }, measuredOffset)
      : null;
  rows.sort(
    (a, b) =>
      scenarioNames.indexOf(a.scenario) - scenarioNames.indexOf(b.scenario) ||
      gatewayNames.indexOf(a.gateway) - gatewayNames.indexOf(b.gateway),
  );

  // Mianzheng (security on) against the baseline measured in the same round — minutes apart, in
  // alternation — and the median over the rounds, as for security's cost: a ratio of the two
  // gateways' median rounds would divide figures from different rounds, and so from different
  // phases of the machine. Each round's ratio is in the JSON.
  const ratiosByRound = (scenarioName: ScenarioName): number[] | null => {
    const base = rows.find((r) => r.scenario === scenarioName && r.gateway === "apollo");
    const ours = rows.find((r) => r.scenario === scenarioName && r.gateway === "mianzheng");
    if (!base || !ours) return null;
    return ours.perRound.map((value, index) => value / (base.perRound[index] ?? Number.NaN));
  };
  const perRoundRatios = {
    interactive: ratiosByRound("interactive"),
    batch: ratiosByRound("batch"),
  };
  const ratioOf = (byRound: number[] | null) =>
    byRound?.every(Number.isFinite) ? middle(byRound) : null;
  const ratios = {
    interactive: ratioOf(perRoundRatios.interactive),
    batch: ratioOf(perRoundRatios.batch),
  };
  // What security costs: mianzheng on against off in the same round (a few minutes apart, not a
  // whole run), the median over the rounds; the machine's drift between rounds cancels out.
  const securityCost = (scenarioName: ScenarioName) => {
    const on = rows.find((r) => r.scenario === scenarioName && r.gateway === "mianzheng");
    const off = rows.find((r) => r.scenario === scenarioName && r.gateway === "mianzheng-open");
    if (!on || !off) return null;
    const perRound = on.perRound.map(
      (value, index) => 1 - value / (off.perRound[index] ?? Number.NaN),
    );
    const cpu = (row: Row) => totalCpu(row.cpuMsPerRequest);
    return {
      median: middle(perRound),
      perRound,
      cpuMsPerRequest: { on: cpu(on), off: cpu(off) },
    };
  };
  const security = { interactive: securityCost("interactive"), batch: securityCost("batch") };
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? "", node: process.version },
    persons: ids.length,
    seed,
    referenceDay: day,
    seconds,
    warmupSeconds,
    rounds,
    pairSeconds,
    quick,
    security:
      securityEnforced === null
        ? "not measured"
        : securityEnforced
          ? "enforced (demo desk: Bearer dev-desk-key, X-Purpose demo)"
          : "requested, but the gateway answered a request without a key (not enforced)",
    notes: [
      "Baselines serve the planner SDL mianzheng's planner uses (the supergraph without the `for: SECURITY` purpose of the @requiresScopes link, which stock @apollo/gateway refuses).",
      `Every process logs at level warn; each gateway and the load generator (${rates.size > 0 ? "paced over undici for a scenario at a fixed rate, autocannon for the others" : "autocannon"}) run in processes of their own on one machine, the six departments in ${subgraphProcesses} (${subgraphGroups()
        .map((group) => group.join("+"))
        .join(", ")}; --subgraph-processes).`,
      "Peak RSS is VmHWM from /proc, summed over the gateway's process tree: each gateway process serves interactive, then batch, so the batch row is its peak over both.",
      ...(rounds > 1
        ? [
            `${rounds} rounds, the gateways measured in turn in each (in reverse order every other round); every row is its round of median throughput (all rounds in perRound), with the errors of all rounds and the highest peak RSS; each ratio against the baseline is the median of the rounds' ratios, each round's against the baseline's of the same round (ratiosByRound).`,
          ]
        : []),
      ...[...rates].map(
        ([name, rate]) =>
          `${name}: a fixed offered rate of ${rate} requests/s (open loop): compare CPU per request, not throughput.`,
      ),
    ],
    rows,
    ratios,
    ratiosByRound: perRoundRatios,
    securityCost: security,
    securityInPairs: paired ? { against: pairedWith, ...paired } : null,
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
  };
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);

  console.log("");
  console.log(
    `${new Date().toISOString().slice(0, 10)}, ${report.machine.cpus} × ${report.machine.cpu}, Node ${process.version}; ${ids.length.toLocaleString("en")} persons; ${seconds} s per measurement after ${warmupSeconds} s warm-up${rounds > 1 ? `; median of ${rounds} rounds` : ""}`,
  );
  console.log(`mianzheng security: ${report.security}`);
  for (const note of report.notes) console.log(`note: ${note}`);
  console.log("");
  console.log(table(rows));
  console.log("");
  const failed = rows.filter((row) => !row.identical || row.errors > 0);
  for (const row of failed) {
    console.log(
      `FAILED ${row.scenario} ${row.gateway}: ${row.mismatch ?? ""} ${row.errors > 0 ? `${row.errors} errors (${JSON.stringify(row.errorDetail)}): ${row.sampleFailure}` : ""}`,
    );
  }
  const failedPairs = Object.entries(paired ?? {}).filter(
    ([, cost]) => cost.differs !== null || cost.errors > 0,
  );
  for (const [name, cost] of failedPairs) {
    console.log(
      `FAILED ${name} pairs: ${cost.differs ?? ""}${cost.errors > 0 ? ` ${cost.errors} errors` : ""}`,
    );
  }
  const answersCompared = rows.reduce((sum, row) => sum + row.answersCompared, 0);
  console.log(
    `answers under load compared with an earlier answer to the same request: ${answersCompared.toLocaleString("en")}${failed.length + failedPairs.length === 0 ? ", all the same" : ""}`,
  );
  // Two gateways asked about the same persons (warm-ups start at the same place) must have
  // answers to compare: none would mean the comparison checked nothing.
  const uncompared = gatewayNames.length > 1 && answersCompared === 0;
  if (uncompared) console.log("FAILED: no answer under load could be compared with another");
  const costs = (["interactive", "batch"] as const).flatMap((name) => {
    const cost = security[name];
    if (!cost) return [];
    const { on, off } = cost.cpuMsPerRequest;
    // At a fixed offered rate both serve the same load: what security costs is CPU, not throughput.
    if (rates.has(name)) {
      return [
        `${name} (fixed rate) CPU per request ${on.toFixed(2)} against ${off.toFixed(2)} ms (+${percent(on / off - 1)})`,
      ];
    }
    return [
      `${name} ${percent(cost.median)}${cost.perRound.length > 1 ? ` (${cost.perRound.map(percent).join(" / ")} by round)` : ""}`,
    ];
  });
  if (costs.length > 0)
    console.log(`security on costs, against off in the same round: ${costs.join(", ")}`);
  if (paired) {
    const line = Object.entries(paired).map(
      ([name, cost]) =>
        `${name}${rates.has(name as ScenarioName) ? " (CPU per request, fixed rate)" : ""} ${percent(cost.median)}${cost.medianInterval ? ` (95 % interval of the median ${cost.medianInterval.map(percent).join(" … ")})` : ""} (${cost.perPair.map(percent).join(" / ")}${cost.errors > 0 ? `; ${cost.errors} errors` : ""}; ${startOrderText(cost.byStartOrder)}; p99 ${tenths(middle(cost.p99PerPair.on))} against ${tenths(middle(cost.p99PerPair.off))} ms)`,
    );
    console.log(
      `security on costs, ${pairEnv ? `against ${pairedWith}, ` : ""}in ${securityPairs} pairs of ${pairSeconds} s slices side by side: ${line.join(", ")}`,
    );
  }
  const show = (value: number | null) => (value === null ? "n/a" : `${value.toFixed(2)}`);
  console.log(`interactive ratio ${show(ratios.interactive)}, batch ratio ${show(ratios.batch)}`);
  // A run whose answers differed or failed measured something else than the gateways' work.
  return failed.length + failedPairs.length > 0 || uncompared ? 1 : 0;
}

function percent(value: number): string {
  return `${(100 * value).toFixed(0)}%`;
}

/** A latency to a tenth of a millisecond: a paced run's are fractional, and their medians long. */
function tenths(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Each half's median (each half its own pair of processes): far apart, the processes differed. */
function startOrderText(halves: PairedCost["byStartOrder"]): string {
  const show = (value: number | null) => (value === null ? "none" : percent(value));
  return `started first: on ${show(halves.onStartedFirst)}, other side ${show(halves.offStartedFirst)}`;
}

/** Stops every process started (and no new one starts), then removes the run's files. */
async function stopEverything(): Promise<void> {
  await processes.stopAll();
  if (!values.profile) rmSync(runDir, { recursive: true, force: true });
  else log(`profiles kept in ${join(runDir, "profiles")}`);
}

// Stopped from outside (a timeout, a CI job cancelled, kill): the seeder, gateways, departments
// and load generator started here stop too instead of living on, holding ports and the cores.
processes.stopOnSignals(log, stopEverything);

let code = 1;
try {
  code = await main();
} catch (error) {
  // Stopping makes the steps under way fail (a load generator stopped): not worth a trace.
  if (!processes.isStopping) console.error(`[bench] ${(error as Error).stack ?? error}`);
} finally {
  await stopEverything();
}
process.exit(code);
