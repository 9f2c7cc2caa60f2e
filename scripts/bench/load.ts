/**
 * The load generator, run in a process of its own so that it does not share an event loop with
 * anything it measures: `node --import tsx scripts/bench/load.ts <job.json>`. Sends one scenario
 * with autocannon (random existing ids, each request different), checks every response, and
 * prints its result as one JSON line. With `answersFile`, it also writes a digest of every
 * complete answer, by the ids asked, for the orchestrator to compare across gateways.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { AnswerDigests } from "./answers.ts";
import { completeAnswer, idsAt, type ScenarioName, scenario } from "./scenarios.ts";

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
  /** Requests per second offered over all connections (open loop); 0: each connection sends its next request when answered. */
  rate: number;
}

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

async function generate(job: LoadJob): Promise<LoadResult> {
  const ids = JSON.parse(readFileSync(job.idsFile, "utf8")) as string[];
  const work = scenario(job.scenario, job.day, job.quick);
  let next = 0;
  let non200 = 0;
  let incomplete = 0;
  let sampleFailure: string | null = null;
  const digests = job.answersFile ? new AnswerDigests() : null;
  // The CPU of loading this module and reading the id list is not the load's.
  const started = process.cpuUsage();

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
          const position = (job.offset + next++ * work.idsPerRequest) % ids.length;
          const asked = idsAt(ids, position, work.idsPerRequest);
          Object.assign(context, { asked, position });
          return {
            ...request,
            body: JSON.stringify({ query: work.query, variables: work.variables(asked) }),
          };
        },
        onResponse: (status, body, context) => {
          const { asked, position } = context as { asked?: string[]; position?: number };
          if (status !== 200) non200++;
          else if (!completeAnswer(body, asked ?? [])) incomplete++;
          else return digests?.add(position ?? 0, body);
          sampleFailure ??= `HTTP ${status}: ${body.slice(0, 500)}`;
        },
      },
    ],
  });

  const result = await instance;
  const cpu = process.cpuUsage(started);
  const whole = process.cpuUsage();
  if (job.answersFile) digests?.write(job.answersFile);
  const complete = Math.max(0, result.requests.total - non200 - incomplete);
  return {
    requests: complete,
    seconds: result.duration,
    requestsPerSecond: complete / result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    errors: { non200, transport: result.errors, incomplete },
    sampleFailure,
    cpuMs: (cpu.user + cpu.system) / 1000,
    processCpuMs: (whole.user + whole.system) / 1000,
  };
}

const job = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as LoadJob;
process.stdout.write(`${JSON.stringify(await generate(job))}\n`);
