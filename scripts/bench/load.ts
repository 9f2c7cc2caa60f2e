/**
 * The load generator, run in a process of its own so that it does not share an event loop with
 * anything it measures: `node --import tsx scripts/bench/load.ts <job.json>`. Sends one scenario
 * with autocannon (random existing ids, each request different), checks every response, and
 * prints its result as one JSON line.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { completeAnswer, idsOf, type ScenarioName, scenario } from "./scenarios.ts";

export interface LoadJob {
  url: string;
  scenario: ScenarioName;
  day: string;
  quick: boolean;
  seconds: number;
  /** Shuffled existing ids; each request takes the next slice. */
  idsFile: string;
  /** Where in the id list to start, so that warm-up and measurement ask about other persons. */
  offset: number;
  headers: Record<string, string>;
  /** Requests per second offered over all connections (open loop); 0: each connection sends its next request when answered. */
  rate: number;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Non-200 answers, connection errors and timeouts, and answers with errors or missing data. */
  errors: { non200: number; transport: number; incomplete: number };
  /** One failing body, to show what went wrong. */
  sampleFailure: string | null;
  /** CPU the load generator itself used, ms. */
  cpuMs: number;
}

const job = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as LoadJob;
const ids = JSON.parse(readFileSync(job.idsFile, "utf8")) as string[];
const work = scenario(job.scenario, job.day, job.quick);
let next = job.offset;
let non200 = 0;
let incomplete = 0;
let sampleFailure: string | null = null;

const instance = autocannon({
  url: job.url,
  connections: work.connections,
  duration: job.seconds,
  ...(job.rate > 0 ? { overallRate: job.rate } : {}),
  timeout: 30,
  method: "POST",
  headers: {
    "content-type": "application/json",
    accept: "application/json",
    ...job.headers,
  },
  requests: [
    {
      setupRequest: (request, context) => {
        const asked = idsOf(ids, next++, work.idsPerRequest);
        (context as { ids?: string[] }).ids = asked;
        return {
          ...request,
          body: JSON.stringify({ query: work.query, variables: work.variables(asked) }),
        };
      },
      onResponse: (status, body, context) => {
        if (status !== 200) non200++;
        else if (!completeAnswer(body, (context as { ids?: string[] }).ids ?? [])) incomplete++;
        else return;
        sampleFailure ??= `HTTP ${status}: ${body.slice(0, 500)}`;
      },
    },
  ],
});

const result = await instance;
const output: LoadResult = {
  requests: result.requests.total,
  seconds: result.duration,
  requestsPerSecond: result.requests.total / result.duration,
  latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  errors: { non200, transport: result.errors + result.timeouts, incomplete },
  sampleFailure,
  cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
};
process.stdout.write(`${JSON.stringify(output)}\n`);
