/**
 * `npm run bench:call`: what one department call costs the department, measured alone. Each
 * department runs in a process of its own (its bundle, as `npm start` runs it) over the bench's
 * population and answers signed calls, one at a time over one keep-alive connection: the call the
 * interactive question's plan makes to it (the gateway's own planner: the household register's
 * root lookup, `_entities` for the five others), for 1 and for 16 persons (`--entities`; more
 * than one person's root lookups merged into one operation, as the gateway sends a wave of
 * requests); the CPU its process spent, from /proc, divided by the calls. Beside them, the
 * floor: Fastify alone answering a fixed body of the same size, which no department can go
 * below.
 *
 * Why it exists: in the closed loop a department call serves 14–17 requests and costs its
 * department about as much as a whole request costs the gateway; at a steady rate it serves four
 * (docs/performance.md, "A fixed rate that was not"). The calls' fixed cost was measured with
 * scratch scripts each session, on machines whose full runs scatter by a fifth; a call measured
 * alone scatters by a few percent, so a change to the department server shows here first.
 *
 * `npm run bench:call -- [--departments civil,tax,…] [--entities 1,16] [--calls 2000]
 *   [--repeats 3] [--persons N] [--seed S] [--quick] [--json FILE] [--profile DIR]`
 *
 * `--profile DIR` runs each server under `node --cpu-prof` and leaves its profile in
 * `DIR/<server>/` (summarise one with `npx tsx scripts/bench/profile-summary.ts <file> [top]
 * [skip-seconds]`; a profile starts with the warm-up, at least 3 s).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { operationFromDocument, Supergraph } from "@apollo/federation-internals";
import { type PlanNode, QueryPlanner, type SubscriptionNode } from "@apollo/query-planner";
import { type OperationDefinitionNode, parse } from "graphql";
import { Pool } from "undici";
import { DEPARTMENTS, type Department, isDepartment } from "../../common/departments.ts";
import { departmentSecret, SIGNATURE_HEADER, signBody } from "../../common/signing.ts";
import {
  departmentRequestBody,
  mergedRootQuery,
  mergedRootVariables,
  rootSlots,
} from "../../gateway/department-client.ts";
import { readSupergraph, SUPERGRAPH_PATH } from "../../gateway/supergraph.ts";
import { benchPopulation } from "./population.ts";
import {
  BenchProcesses,
  cpuSplitMs,
  freePort,
  ROOT,
  type Running,
  waitUntil,
} from "./processes.ts";
import { idsAt, interactiveScenario } from "./scenarios.ts";
import { middle } from "./statistics.ts";

const USAGE = `usage: npm run bench:call -- [--departments ${DEPARTMENTS.join(",")}] [--entities 1,16]
  [--calls 2000] [--repeats 3] [--persons N] [--seed S] [--quick] [--json FILE] [--profile DIR]`;

const { values } = parseArgs({
  options: {
    departments: { type: "string" },
    entities: { type: "string", default: "1,16" },
    calls: { type: "string" },
    repeats: { type: "string" },
    persons: { type: "string" },
    seed: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
    json: { type: "string" },
    profile: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = values.quick;
const positive = (text: string | undefined, fallback: number, name: string) => {
  const value = Number(text ?? fallback);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer\n${USAGE}`);
    process.exit(2);
  }
  return value;
};
const calls = positive(values.calls, quick ? 300 : 2000, "calls");
const repeats = positive(values.repeats, quick ? 1 : 3, "repeats");
const persons = positive(values.persons, quick ? 3000 : 200_000, "persons");
const seed = positive(values.seed, 1, "seed");
/** The shortest warm-up of a server, whatever `--calls` says. */
const warmUpMs = quick ? 0 : 3000;
const entityCounts = (values.entities ?? "").split(",").map((n) => positive(n, 0, "entities"));
const departments = (values.departments?.split(",") ?? [...DEPARTMENTS]).map((name) => {
  if (!isDepartment(name)) {
    console.error(`unknown department "${name}"\n${USAGE}`);
    process.exit(2);
  }
  return name;
});

/** One department's call in the interactive question's plan, as the gateway sends it. */
interface PlannedCall {
  operationName: string | undefined;
  /** `_entities` after the person is known, or the root lookup (the household register's). */
  kind: "entities" | "root";
  operation: OperationDefinitionNode;
  text: string;
}

/**
 * The interactive question's department calls, from the gateway's own query planner over the
 * supergraph: what each department is asked is what `npm run bench` makes it answer, not a copy
 * of its selections here.
 */
function plannedCalls(day: string): Map<Department, PlannedCall> {
  const supergraph = Supergraph.build(
    readSupergraph(readFileSync(SUPERGRAPH_PATH, "utf8")).plannerSdl,
  );
  const operation = operationFromDocument(
    supergraph.apiSchema(),
    parse(interactiveScenario(day).query),
  );
  const calls = new Map<Department, PlannedCall>();
  const visitNode = (node: PlanNode | SubscriptionNode | undefined): void => {
    if (!node) return;
    if (node.kind === "Fetch") {
      if (!isDepartment(node.serviceName)) return;
      const document = parse(node.operation);
      calls.set(node.serviceName, {
        operationName: node.operationName,
        kind: node.requires ? "entities" : "root",
        operation: document.definitions[0] as OperationDefinitionNode,
        text: node.operation,
      });
    } else if (node.kind === "Sequence" || node.kind === "Parallel") {
      for (const child of node.nodes) visitNode(child);
    } else if (node.kind === "Flatten") visitNode(node.node);
  };
  visitNode(new QueryPlanner(supergraph).buildQueryPlan(operation).node);
  return calls;
}

/**
 * The body of a call for `ids`, as the gateway writes it: `_entities` over their representations,
 * or the root lookup, merged into one operation of `rootSlots` slots for more than one person
 * (a coalesced wave of requests).
 */
function callBody(call: PlannedCall, ids: readonly string[]): string {
  if (call.kind === "entities") {
    const representations = ids.map((id) => ({ __typename: "Person", id }));
    return departmentRequestBody(call.text, { representations }, call.operationName);
  }
  const callers = ids.map((id) => ({ id }));
  if (callers.length === 1)
    return departmentRequestBody(call.text, callers[0] ?? {}, call.operationName);
  const slots = rootSlots(callers.length);
  return departmentRequestBody(
    mergedRootQuery(call.operation, slots),
    mergedRootVariables(callers, slots),
    call.operationName,
  );
}

/** How many persons an answer holds: `_entities`' items, or the root fields answered. */
function personsAnswered(data: Record<string, unknown> | undefined): number {
  if (!data) return -1;
  if (Array.isArray(data._entities)) return data._entities.length;
  return Object.values(data).filter((value) => value !== null).length;
}

interface Measured {
  server: string;
  call: PlannedCall["kind"] | "fixed";
  entities: number;
  /** Medians over the repeats, µs a call. */
  cpuMicros: number;
  userMicros: number;
  systemMicros: number;
  roundTripMicros: number;
  /** Every repeat's CPU a call, µs. */
  cpuPerRepeat: number[];
}

const log = (message: string) => console.error(`[call] ${message}`);
/** Every server started: stopped at the end, on an error, or by a signal from outside. */
const processes = new BenchProcesses();
processes.stopOnSignals(log);
const { start } = processes;

/** A server in a process of its own, on a free port, once it answers its readiness probe. */
async function serve(label: string, script: string, args: (port: number) => string[], env = {}) {
  const port = await freePort();
  const running = start(label, script, args(port), {
    tsx: script.endsWith(".ts"),
    nodeFlags: values.profile
      ? ["--cpu-prof", `--cpu-prof-dir=${resolve(values.profile, label.replaceAll(" ", "-"))}`]
      : [],
    env: { LOG_LEVEL: "warn", NODE_ENV: "development", ...env },
  });
  const origin = `http://127.0.0.1:${port}`;
  await waitUntil(running, async () => (await fetch(`${origin}/ready`)).ok);
  return { running, origin };
}

/**
 * Calls one server `repeats` × `calls` times after a warm-up, one call at a time; the CPU its
 * process spent per call. Every answer is checked: a status other than 200, an error or a wrong
 * number of entities stops the bench.
 */
async function measure(
  server: { running: Running; origin: string },
  label: string,
  kind: Measured["call"],
  body: (call: number) => string,
  sign: string | null,
  entities: number,
): Promise<Measured> {
  const pool = new Pool(server.origin, { connections: 1, pipelining: 1 });
  const pid = server.running.child.pid as number;
  let call = 0;
  const once = async () => {
    const text = body(call++);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (sign) headers[SIGNATURE_HEADER] = signBody(sign, text);
    const response = await pool.request({ method: "POST", path: "/graphql", headers, body: text });
    const answer = await response.body.text();
    let parsed: { data?: Record<string, unknown>; errors?: unknown } = {};
    try {
      parsed = JSON.parse(answer);
    } catch {
      // Not JSON: reported below with the server's name and what it sent.
    }
    if (response.statusCode !== 200 || parsed.errors || personsAnswered(parsed.data) !== entities) {
      throw new Error(`${label} answered ${response.statusCode}: ${answer.slice(0, 300)}`);
    }
  };
  try {
    // A warm-up of a repeat's calls and at least `warmUpMs`: a department's code is still being
    // optimised for the first thousand calls or so (a 500-call warm-up left the first repeat
    // twice the third's), and on a fast core 2,000 calls took half a second, after which the
    // first repeat was still the dearest (230 / 165 / 150 µs).
    const warmUpStarted = performance.now();
    for (let i = 0; i < calls || performance.now() - warmUpStarted < warmUpMs; i++) await once();
    const runs: Array<{ user: number; system: number; wall: number }> = [];
    for (let repeat = 0; repeat < repeats; repeat++) {
      const before = cpuSplitMs(pid);
      const started = performance.now();
      for (let i = 0; i < calls; i++) await once();
      const wall = performance.now() - started;
      const after = cpuSplitMs(pid);
      runs.push({ user: after.user - before.user, system: after.system - before.system, wall });
    }
    const perCall = (ms: number) => Math.round((1000 * ms) / calls);
    const cpuPerRepeat = runs.map((run) => perCall(run.user + run.system));
    const result: Measured = {
      server: label,
      call: kind,
      entities,
      cpuMicros: middle(cpuPerRepeat),
      userMicros: middle(runs.map((run) => perCall(run.user))),
      systemMicros: middle(runs.map((run) => perCall(run.system))),
      roundTripMicros: middle(runs.map((run) => perCall(run.wall))),
      cpuPerRepeat,
    };
    log(
      `${label}, ${entities} ${entities === 1 ? "person" : "persons"} a call (${kind}): ${result.cpuMicros} µs of its CPU a call (user ${result.userMicros}, system ${result.systemMicros}; by repeat ${cpuPerRepeat.join(" / ")}), ${result.roundTripMicros} µs a round trip`,
    );
    return result;
  } finally {
    await pool.close();
  }
}

async function main(): Promise<number> {
  // The departments' bundle, as `npm start` and `npm run bench` run them.
  execFileSync(process.execPath, [join(ROOT, "scripts/build.mjs")], { stdio: "inherit" });
  const population = await benchPopulation({ persons, seed, log, start });
  const ids = JSON.parse(readFileSync(population.idsFile, "utf8")) as string[];
  const planned = plannedCalls(population.day);
  const results: Measured[] = [];
  let floorBody = "";
  for (const department of departments) {
    const call = planned.get(department);
    if (!call) throw new Error(`the interactive question's plan does not call ${department}`);
    const server = await serve(
      department,
      "dist/subgraph.mjs",
      (port) => [department, "--port", String(port)],
      { DATA_DIR: population.dir },
    );
    try {
      for (const entities of entityCounts) {
        const body = (n: number) => callBody(call, idsAt(ids, n * entities, entities));
        if (department === departments[0] && entities === entityCounts[0]) floorBody = body(0);
        results.push(
          await measure(
            server,
            department,
            call.kind,
            body,
            departmentSecret(department),
            entities,
          ),
        );
      }
    } finally {
      await server.running.stop();
    }
  }
  // The floor: Fastify answering a fixed body, for a request of the first department's size.
  const floor = await serve("fastify alone", "scripts/bench/http-floor.ts", (port) => [
    String(port),
    String(entityCounts[0]),
  ]);
  try {
    results.push(
      await measure(floor, "fastify alone", "fixed", () => floorBody, null, entityCounts[0] ?? 1),
    );
  } finally {
    await floor.running.stop();
  }

  console.log(
    `\n${new Date().toISOString().slice(0, 10)}, Node ${process.version}; ${persons.toLocaleString("en")} persons; ${repeats} × ${calls} calls one at a time, the median repeat\n`,
  );
  console.log("| server | call | persons a call | CPU a call | user | system | round trip |");
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
  for (const row of results) {
    console.log(
      `| ${row.server} | ${row.call === "root" ? "root lookup" : row.call === "entities" ? "_entities" : "fixed answer"} | ${row.entities} | ${row.cpuMicros} µs | ${row.userMicros} µs | ${row.systemMicros} µs | ${row.roundTripMicros} µs |`,
    );
  }
  if (values.json) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ persons, calls, repeats, results }, null, 2)}\n`,
    );
  }
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  // Stopped by a signal, the call under way fails: not worth a message.
  if (!processes.isStopping) console.error(`[call] ${(error as Error).message}`);
} finally {
  await processes.stopAll();
}
process.exit(code);
