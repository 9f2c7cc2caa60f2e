/**
 * The load generator, run in a process of its own so that it does not share an event loop with
 * anything it measures: `node --import tsx scripts/bench/load.ts <job.json>`. Sends one scenario
 * (random existing ids, each request different) — in a closed loop with autocannon, or paced at a
 * fixed rate (`paced`) — checks every response, and
 * prints its result as one JSON line. With `answersFile`, it also writes a digest of every
 * complete answer, by the ids asked, for the orchestrator to compare across gateways.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { Pool } from "undici";
import { AnswerDigests } from "./answers.ts";
import { completeAnswer, idsAt, type Scenario, type ScenarioName, scenario } from "./scenarios.ts";

export interface LoadJob {
  url: string;
  scenario: ScenarioName;
  day: string;
  quick: boolean;
  seconds: number;
  /** Shuffled existing ids; each request takes the next slice. */
  idsFile: string;
  /**
   * The position in the id list of the first request's ids (request n asks the ids from
   * `offset + n × size`), so that warm-up and measurement ask about other persons.
   */
  offset: number;
  /** Where to write the answers' digests (`readAnswerDigests`); none when absent. */
  answersFile?: string;
  headers: Record<string, string>;
  /**
   * Requests per second offered over all connections, paced (open loop, `paced`); 0: each
   * connection sends its next request when answered (closed loop, autocannon).
   */
  rate: number;
}

/** A job with its id list read. */
type Loaded = LoadJob & { ids: readonly string[] };

export interface LoadResult {
  /** Requests answered completely (HTTP 200, data for every id, no error): what throughput counts. */
  requests: number;
  seconds: number;
  /** `requests` over the load's duration: failed answers are not throughput. */
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /**
   * Non-200 answers, transport failures (connection errors and timeouts, autocannon's `errors`,
   * which include its `timeouts`), and answers with errors or missing data.
   */
  errors: { non200: number; transport: number; incomplete: number };
  /** One failing body, to show what went wrong. */
  sampleFailure: string | null;
  /** CPU the load generator itself used for the load, ms. */
  cpuMs: number;
  /**
   * CPU of the whole load process, ms: the load, and before it node's start, tsx compiling this
   * script and autocannon, reading the id list. The orchestrator's window covers all of it, and
   * a 3 s slice's start is a tenth of the machine; not the load's, not another process's either.
   */
  processCpuMs: number;
}

/** What every response is checked for, and what the checks counted. */
class Checks {
  non200 = 0;
  incomplete = 0;
  sampleFailure: string | null = null;
  readonly digests: AnswerDigests | null;

  constructor(answersFile: string | undefined) {
    this.digests = answersFile ? new AnswerDigests() : null;
  }

  response(status: number, body: string, asked: readonly string[], position: number): void {
    if (status === 200 && completeAnswer(body, asked)) {
      this.digests?.add(position, body);
      return;
    }
    if (status !== 200) this.non200++;
    else this.incomplete++;
    this.sampleFailure ??= `HTTP ${status}: ${body.slice(0, 500)}`;
  }
}

interface Sent {
  /** Responses received (any status). */
  responses: number;
  seconds: number;
  latencyMs: LoadResult["latencyMs"];
  /** Transport failures: connection errors and timeouts. */
  transport: number;
}

/** Closed loop: each connection sends its next request when its last one was answered. */
async function closedLoop(job: Loaded, work: Scenario, checks: Checks): Promise<Sent> {
  let next = 0;
  const result = await autocannon({
    url: job.url,
    connections: work.connections,
    duration: job.seconds,
    timeout: REQUEST_TIMEOUT_S,
    method: "POST",
    headers: requestHeaders(job),
    requests: [
      {
        setupRequest: (request, context) => {
          const position = (job.offset + next++ * work.idsPerRequest) % job.ids.length;
          const asked = idsAt(job.ids, position, work.idsPerRequest);
          Object.assign(context, { asked, position });
          return { ...request, body: requestBody(work, asked) };
        },
        onResponse: (status, body, context) => {
          const { asked, position } = context as { asked?: string[]; position?: number };
          checks.response(status, body, asked ?? [], position ?? 0);
        },
      },
    ],
  });
  return {
    responses: result.requests.total,
    seconds: result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    transport: result.errors,
  };
}

/**
 * A fixed offered load, paced: request n is due at `start + n / rate` and goes out then, on a
 * free connection or, with all `connections` busy, as soon as one is free; its latency counts
 * from when it was due, so that a stall of the gateway shows as the wait of every request due
 * during it, as wrk2 measures (no coordinated omission).
 *
 * Not autocannon's `overallRate`: that is a quota per connection per second, sent back to back
 * from the start of each second, after which the connection idles until the next. At 500
 * requests/s over 32 connections that is a burst of 32 concurrent requests every second (a closed
 * loop for the first part of it), and its latencies are recorded "corrected" against a 1 ms
 * interval, a synthetic sample for each millisecond a response took: p50 19 ms at 50 requests/s
 * where a request alone takes a few (docs/performance.md, "A fixed rate that was not").
 */
async function paced(job: Loaded, work: Scenario, checks: Checks): Promise<Sent> {
  const origin = new URL(job.url);
  const pool = new Pool(origin.origin, {
    connections: work.connections,
    pipelining: 1,
    headersTimeout: REQUEST_TIMEOUT_S * 1000,
    bodyTimeout: REQUEST_TIMEOUT_S * 1000,
  });
  const headers = requestHeaders(job);
  const latencies: number[] = [];
  let transport = 0;
  const start = performance.now();
  const due = (n: number) => start + (n * 1000) / job.rate;
  const end = start + job.seconds * 1000;

  async function send(n: number): Promise<void> {
    const position = (job.offset + n * work.idsPerRequest) % job.ids.length;
    const asked = idsAt(job.ids, position, work.idsPerRequest);
    let status: number;
    let body: string;
    try {
      const response = await pool.request({
        path: `${origin.pathname}${origin.search}`,
        method: "POST",
        headers,
        body: requestBody(work, asked),
      });
      status = response.statusCode;
      body = await response.body.text();
    } catch {
      transport++;
      return;
    }
    // Outside the try: only the exchange itself is a transport failure, not a fault in checking.
    latencies.push(performance.now() - due(n));
    checks.response(status, body, asked, position);
  }

  const inFlight: Promise<void>[] = [];
  let sent = 0;
  await new Promise<void>((finished) => {
    const tick = () => {
      const now = performance.now();
      for (; due(sent) <= now && due(sent) < end; sent++) inFlight.push(send(sent));
      if (due(sent) >= end) return finished();
      // Node's timers have a millisecond's resolution: what fell due meanwhile goes out together.
      setTimeout(tick, due(sent) - now);
    };
    tick();
  });
  await Promise.all(inFlight);
  // Past the window while the last answers arrive: a gateway that fell behind is not credited
  // with answering within the window what it answered after it.
  const seconds = Math.max(job.seconds, (performance.now() - start) / 1000);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (quantile: number) =>
    latencies.length === 0
      ? 0
      : Math.round((latencies[Math.ceil(quantile * latencies.length) - 1] as number) * 10) / 10;
  return {
    responses: latencies.length,
    seconds,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
    transport,
  };
}

function requestHeaders(job: Loaded): Record<string, string> {
  return { "content-type": "application/json", accept: "application/json", ...job.headers };
}

function requestBody(work: Scenario, asked: readonly string[]): string {
  return JSON.stringify({ query: work.query, variables: work.variables(asked) });
}

/** As autocannon's `timeout` had it: a request unanswered this long is a transport failure. */
const REQUEST_TIMEOUT_S = 30;

async function generate(job: Loaded): Promise<LoadResult> {
  const work = scenario(job.scenario, job.day, job.quick);
  const checks = new Checks(job.answersFile);
  // The CPU of loading this module and reading the id list is not the load's.
  const started = process.cpuUsage();
  const sent = await (job.rate > 0 ? paced : closedLoop)(job, work, checks);
  const cpu = process.cpuUsage(started);
  const whole = process.cpuUsage();
  if (job.answersFile) checks.digests?.write(job.answersFile);
  const complete = Math.max(0, sent.responses - checks.non200 - checks.incomplete);
  return {
    requests: complete,
    seconds: sent.seconds,
    requestsPerSecond: complete / sent.seconds,
    latencyMs: sent.latencyMs,
    errors: { non200: checks.non200, transport: sent.transport, incomplete: checks.incomplete },
    sampleFailure: checks.sampleFailure,
    cpuMs: (cpu.user + cpu.system) / 1000,
    processCpuMs: (whole.user + whole.system) / 1000,
  };
}

const job = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as LoadJob;
const ids = JSON.parse(readFileSync(job.idsFile, "utf8")) as string[];
process.stdout.write(`${JSON.stringify(await generate({ ...job, ids }))}\n`);
