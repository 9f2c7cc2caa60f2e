/**
 * `npm run verify -- --policy <name> --on <date> --input <file> --output <file> [options]`:
 * verifies every subject of a CSV (column `id`, or `uscc` for organisations) or NDJSON file through
 * the gateway, in batches with bounded concurrency, and writes one NDJSON line per input record, in
 * input order: `{"subject","outcome","reasons","unavailable"[,"quota"],"proof"}`.
 *
 * Each batch is one `POST /verify/batch` next to the gateway's /graphql, which answers exactly the
 * lines to write; the CLI only interleaves the lines it writes itself (records without a subject,
 * results kept by `--only-undetermined`) and counts outcomes.
 *
 * Resumable: killed at any point and started again with the same arguments, it continues where it
 * stopped, and the output is byte for byte that of an uninterrupted run. The job's application
 * date and the proofs' issue time are kept in `<output>.state.json`.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { Agent, request } from "undici";
import { todayInBeijing } from "../common/clock.ts";
import { isCalendarDate } from "../common/ids.ts";
import { ProcessClaims } from "../common/processes.ts";
import {
  countRecords,
  detectFormat,
  fingerprint,
  InputProblem,
  type InputRecord,
  inputProblem,
  lineOutcome,
  readPreviousResults,
  readSubjects,
  resumeOutput,
  runBatch,
  splitLines,
  type Tally,
  type VerifiedLines,
} from "../gateway/verification/batch.ts";

const USAGE = `usage: npm run verify -- --policy <name> --input <file> --output <file> [options]
  --policy NAME              e.g. beijing-car-lottery/individual (see Query.policies)
  --on YYYY-MM-DD            application date D (default: today in Beijing, kept for a resumed run)
  --input FILE               CSV with a column id (uscc for organisations), or NDJSON
  --output FILE              NDJSON results, one line per input record, in input order
  --gateway URL              default GATEWAY_URL or http://127.0.0.1:4000/graphql
  --key KEY --purpose P      the desk's key and purpose (default MIANZHENG_KEY, MIANZHENG_PURPOSE)
  --no-proofs                leave the signed proofs out
  --only-undetermined FILE   a previous output: verify only its UNDETERMINED lines again, copy the rest
  --concurrency N            batches in flight (default 4)
  --batch N                  subjects per request (default 1000)
exit codes: 0 every subject verified; 3 finished, but some verdicts are UNDETERMINED (a department
did not answer: run again with --only-undetermined); 1 stopped (the results so far are kept: run the
same command to continue); 2 wrong usage or input; 130 interrupted`;

interface JobState {
  version: 1;
  policy: string;
  on: string;
  /** ISO instant every proof of the job is issued at. */
  issuedAt: string;
  proofs: boolean;
  input: { path: string; size: number; sha256: string };
  onlyUndetermined: { path: string; size: number; sha256: string } | null;
  startedAt: string;
  completedAt: string | null;
}

function fail(message: string, code = 1): never {
  console.error(`verify: ${message}`);
  process.exit(code);
}

function usage(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function positive(name: string, value: string): number {
  if (!/^[1-9]\d*$/.test(value)) usage(`--${name} must be a positive whole number`);
  return Number(value);
}

let values: ReturnType<typeof parseCommandLine>;
function parseCommandLine() {
  return parseArgs({
    options: {
      policy: { type: "string" },
      on: { type: "string" },
      input: { type: "string" },
      output: { type: "string" },
      gateway: { type: "string" },
      key: { type: "string" },
      purpose: { type: "string" },
      "no-proofs": { type: "boolean", default: false },
      "only-undetermined": { type: "string" },
      concurrency: { type: "string", default: "4" },
      batch: { type: "string", default: "1000" },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
}
try {
  values = parseCommandLine();
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const policyName = values.policy ?? usage("missing --policy");
const outputPath = resolve(values.output ?? usage("missing --output"));
const previousPath = values["only-undetermined"] ? resolve(values["only-undetermined"]) : null;
const inputPath = values.input ? resolve(values.input) : (previousPath ?? usage("missing --input"));
if (!existsSync(inputPath)) fail(`input ${inputPath} does not exist`, 2);
if (!statSync(inputPath).isFile()) fail(`input ${inputPath} is not a file`, 2);
if (previousPath && !existsSync(previousPath))
  fail(`previous output ${previousPath} does not exist`, 2);
if (previousPath && existsSync(`${previousPath}.state.json`)) {
  // Its lines not yet written are applicants it never verified: they would be missing here.
  const previous = readJsonFile<JobState>(`${previousPath}.state.json`);
  if (previous.completedAt === null) {
    fail(
      `${previousPath} is the output of a run that has not finished; finish it first (run its command again), then verify its UNDETERMINED lines`,
      2,
    );
  }
}
if (values.on !== undefined && !isCalendarDate(values.on)) usage("--on must be a date YYYY-MM-DD");
const concurrency = positive("concurrency", values.concurrency);
const batchSize = positive("batch", values.batch);
const proofs = !values["no-proofs"];
const gatewayUrl = values.gateway ?? process.env.GATEWAY_URL ?? "http://127.0.0.1:4000/graphql";
if (!URL.canParse(gatewayUrl)) usage(`--gateway must be a URL, got "${gatewayUrl}"`);
const key = values.key ?? process.env.MIANZHENG_KEY;
const purpose = values.purpose ?? process.env.MIANZHENG_PURPOSE;

const agent = new Agent({ connections: concurrency + 1, keepAliveTimeout: 30_000 });
const headers: Record<string, string> = {
  "content-type": "application/json",
  accept: "application/graphql-response+json, application/json",
  ...(key ? { authorization: `Bearer ${key}` } : {}),
  ...(purpose ? { "x-purpose": purpose } : {}),
};

class GatewayRefused extends Error {}

/** The batch endpoint beside /graphql (same host and path prefix). */
const batchUrl = new URL("verify/batch", gatewayUrl).toString();

type GatewayErrors = { errors?: Array<{ message: string; extensions?: { code?: string } }> };

function refusal(status: number, text: string): GatewayRefused {
  let error: NonNullable<GatewayErrors["errors"]>[number] | undefined;
  try {
    error = (JSON.parse(text) as GatewayErrors).errors?.[0];
  } catch {}
  return new GatewayRefused(
    error
      ? `${error.extensions?.code ?? `HTTP ${status}`}: ${error.message}`
      : `HTTP ${status}: ${text.slice(0, 200) || "no answer"}`,
  );
}

/**
 * POSTs to the gateway; retries what may pass on a later attempt (network, 429, 5xx) and resolves
 * with the status and body of any other answer.
 */
async function post(url: string, body: string): Promise<{ status: number; body: Buffer }> {
  let delay = 250;
  for (let attempt = 0; ; attempt++) {
    let problem: string;
    let retryAfterMs = 0;
    try {
      const response = await request(url, { method: "POST", headers, body, dispatcher: agent });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      if (response.statusCode !== 429 && response.statusCode < 500) {
        return { status: response.statusCode, body: bytes };
      }
      problem = `HTTP ${response.statusCode}`;
      retryAfterMs = Number(response.headers["retry-after"] ?? 0) * 1000;
    } catch (error) {
      problem = (error as Error).message;
    }
    if (attempt >= 8) throw new Error(`the gateway at ${url} did not answer (${problem})`);
    await new Promise((resolveDelay) => setTimeout(resolveDelay, Math.max(delay, retryAfterMs)));
    delay = Math.min(delay * 2, 10_000);
  }
}

/** A GraphQL request to the gateway (retried as `post` retries). */
async function graphql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const { status, body } = await post(gatewayUrl, JSON.stringify({ query, variables }));
  let parsed: { data?: T | null } & GatewayErrors;
  try {
    parsed = JSON.parse(body.toString());
  } catch {
    throw new GatewayRefused(`HTTP ${status}: the gateway did not answer JSON`);
  }
  const error = parsed.errors?.[0];
  if (error || !parsed.data) {
    throw new GatewayRefused(
      `${error?.extensions?.code ?? `HTTP ${status}`}: ${error?.message ?? "no data"}`,
    );
  }
  return parsed.data;
}

/** One batch through `POST /verify/batch`: the result lines exactly as they are written. */
async function verifyBatch(body: {
  policy: string;
  subjects: string[];
  on: string | null;
  issuedAt: string | null;
  proofs: boolean;
}): Promise<VerifiedLines> {
  const answer = await post(batchUrl, JSON.stringify(body));
  if (answer.status !== 200) throw refusal(answer.status, answer.body.toString());
  return { text: answer.body, outcomes: splitLines(answer.body).map(lineOutcome) };
}

interface PolicyInfo {
  name: string;
  subjectKind: "PERSON" | "ORGANIZATION";
  grantsQuota: boolean;
}

/** A JSON file this command wrote, or a clear failure naming it. */
function readJsonFile<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (error) {
    return fail(`${file} cannot be read (${(error as Error).message}); delete it to start over`, 2);
  }
}

function readState(): JobState | null {
  const file = `${outputPath}.state.json`;
  return existsSync(file) ? readJsonFile<JobState>(file) : null;
}

/** Results name people: readable by the operator alone, like the keys. */
const PRIVATE = 0o600;

function writeState(state: JobState): void {
  const file = `${outputPath}.state.json`;
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: PRIVATE });
  renameSync(`${file}.tmp`, file);
}

/**
 * One run at a time per output: two would append their batches to the same file. The claim is
 * held in `<output>.claim.db` (see `ProcessClaims`; a file per output, so that runs of different
 * outputs, or of different users, never meet in it, and a path through a symbolic link finds the
 * same file); a claim whose process is gone is taken over, and two runs taking over the same one
 * cannot both get it.
 */
function claimOutput(): void {
  const job = "output";
  let claims: ProcessClaims;
  let claim: ReturnType<ProcessClaims["take"]>;
  try {
    claims = ProcessClaims.open(`${outputPath}.claim.db`);
    claim = claims.take(job);
  } catch (error) {
    fail(`cannot claim ${outputPath} for this run: ${(error as Error).message}`, 2);
  }
  if (!claim.mine) {
    claims.close();
    fail(
      `another verify (pid ${claim.holder}) is writing ${outputPath}; wait for it or stop it`,
      2,
    );
  }
  process.on("exit", () => {
    // Best effort: a claim left behind is taken over by the next run once this process is gone,
    // and the exit code must stay the one the run chose.
    try {
      claims.release(job);
      claims.close();
    } catch {}
  });
}

/** The job this output belongs to: a new one, or the interrupted one this run continues. */
function jobState(): JobState {
  const input = { path: inputPath, ...fingerprint(inputPath) };
  const onlyUndetermined = previousPath
    ? { path: previousPath, ...fingerprint(previousPath) }
    : null;
  const existing = readState();
  if (existing) {
    const mismatch =
      existing.policy !== policyName
        ? "--policy"
        : values.on !== undefined && values.on !== existing.on
          ? "--on"
          : existing.proofs !== proofs
            ? "--no-proofs"
            : existing.input.sha256 !== input.sha256 || existing.input.size !== input.size
              ? "--input (the file changed)"
              : existing.onlyUndetermined?.sha256 !== onlyUndetermined?.sha256
                ? "--only-undetermined"
                : null;
    if (mismatch) {
      fail(
        `${outputPath} belongs to another job (${mismatch} differs); choose another --output or delete it and ${outputPath}.state.json`,
        2,
      );
    }
    return existing;
  }
  if (existsSync(outputPath) && statSync(outputPath).size > 0) {
    fail(
      `${outputPath} exists and is not the output of an interrupted run; refusing to overwrite it`,
      2,
    );
  }
  let on = values.on;
  if (on === undefined && previousPath && existsSync(`${previousPath}.state.json`)) {
    on = readJsonFile<JobState>(`${previousPath}.state.json`).on;
  }
  const state: JobState = {
    version: 1,
    policy: policyName,
    on: on ?? todayInBeijing(),
    issuedAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    proofs,
    input,
    onlyUndetermined,
    startedAt: new Date().toISOString(),
    completedAt: null,
  };
  writeState(state);
  writeFileSync(outputPath, "", { mode: PRIVATE });
  return state;
}

function printSummary(
  tally: Tally,
  state: JobState,
  resumedAt: number,
  elapsedMs: number,
  verified: number,
) {
  const seconds = elapsedMs / 1000;
  const lines = [
    `${tally.total} results in ${outputPath} (${state.policy}, on ${state.on})`,
    `verified ${verified} subjects in ${seconds.toFixed(1)} s: ${Math.round(verified / Math.max(seconds, 0.001))} subjects/s${resumedAt > 0 ? ` (continued after ${resumedAt} done earlier)` : ""}`,
    "outcomes:",
    ...Object.entries(tally.byOutcome)
      .sort((a, b) => b[1] - a[1])
      .map(([outcome, count]) => `  ${outcome.padEnd(28)} ${String(count).padStart(10)}`),
  ];
  const reasons = Object.entries(tally.byReason).sort((a, b) => b[1] - a[1]);
  if (reasons.length > 0) {
    lines.push(
      "reasons:",
      ...reasons.map(([reason, count]) => `  ${reason.padEnd(28)} ${String(count).padStart(10)}`),
    );
  }
  const undetermined = tally.byOutcome.UNDETERMINED ?? 0;
  if (undetermined > 0) {
    lines.push(
      `${undetermined} UNDETERMINED: a department did not answer. Later, verify only those again with`,
      `  npm run verify -- --policy ${state.policy} --on ${state.on} --only-undetermined ${outputPath} --output <new output>${again()}`,
    );
  }
  console.log(lines.join("\n"));
}

/**
 * What the command to run again needs besides: the desk's purpose and gateway as given, and the
 * key only by name (it is not printed); what came from the environment comes from it again.
 */
function again(): string {
  const parts: string[] = [];
  if (values.gateway) parts.push(`--gateway ${values.gateway}`);
  if (values.key) parts.push("--key <key>");
  if (values.purpose) parts.push(`--purpose ${values.purpose}`);
  // Without it the verdicts verified again would carry proofs the copied lines lack.
  if (values["no-proofs"]) parts.push("--no-proofs");
  return parts.length > 0 ? ` ${parts.join(" ")}` : "";
}

async function main(): Promise<void> {
  const { policies } = await graphql<{ policies: PolicyInfo[] }>(
    "{ policies { name subjectKind grantsQuota } }",
    {},
  );
  const policy = policies.find((candidate) => candidate.name === policyName);
  if (!policy) {
    fail(
      `no policy "${policyName}"; the gateway knows: ${policies.map((p) => p.name).join(", ")}`,
      2,
    );
  }
  // Fails fast (FORBIDDEN, a bad date, an input without the subject's column) before any file
  // is touched.
  await verifyBatch({
    policy: policyName,
    subjects: [],
    on: values.on ?? null,
    issuedAt: null,
    proofs: false,
  });
  if (!previousPath) {
    const problem = await inputProblem(inputPath, policy.subjectKind, detectFormat(inputPath));
    if (problem) fail(`${inputPath}: ${problem}`, 2);
  }
  claimOutput();
  const state = jobState();

  const { done: resumedAt, tally } = await resumeOutput(outputPath);
  const total = await countInput();
  if (state.completedAt !== null && existsSync(outputPath)) {
    printSummary(tally, state, resumedAt, 0, 0);
    return;
  }

  const controller = new AbortController();
  let interrupted = false;
  process.on("SIGINT", () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(
      "\nverify: stopping after the batches in flight; run the same command to continue",
    );
    controller.abort();
  });

  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        {
          format:
            "verifying {bar} {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted}",
          hideCursor: true,
          etaBuffer: 50,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(total, resumedAt, { rate: 0 });
  const started = performance.now();
  let lastReport = started;
  const records: AsyncIterable<InputRecord> = previousPath
    ? readPreviousResults(previousPath)
    : readSubjects(inputPath, policy.subjectKind);
  let done = resumedAt;
  try {
    done = await runBatch({
      records,
      output: outputPath,
      skip: resumedAt,
      batchSize,
      concurrency,
      withQuota: policy.grantsQuota,
      signal: controller.signal,
      verify: (subjects) =>
        verifyBatch({
          policy: policyName,
          subjects,
          on: state.on,
          issuedAt: proofs ? state.issuedAt : null,
          proofs,
        }),
      onWritten: (count, outcomes) => {
        for (const { outcome, reasons } of outcomes) tally.add(outcome, reasons);
        done = count;
        const now = performance.now();
        const rate = Math.round((count - resumedAt) / ((now - started) / 1000));
        bar?.update(count, { rate });
        if (!bar && now - lastReport > 10_000) {
          lastReport = now;
          console.error(`verify: ${count}/${total} done, ${rate} subjects/s`);
        }
      },
    });
  } catch (error) {
    bar?.stop();
    // A broken input stops every run at the same record: mending the file comes first.
    const next =
      error instanceof InputProblem
        ? `mend ${inputPath} there, then run the same command to continue`
        : "run the same command to continue";
    fail(`${(error as Error).message}\n${done} results are safe in ${outputPath}; ${next}`);
  }
  bar?.stop();
  const elapsed = performance.now() - started;
  if (controller.signal.aborted) {
    console.error(
      `verify: interrupted with ${done} results in ${outputPath}; run the same command to continue`,
    );
    process.exit(130);
  }
  writeState({ ...state, completedAt: new Date().toISOString() });
  printSummary(tally, state, resumedAt, elapsed, done - resumedAt);
  // Finished, but not every subject has a verdict to act on: scripts must be able to tell.
  if ((tally.byOutcome.UNDETERMINED ?? 0) > 0) process.exitCode = 3;
}

async function countInput(): Promise<number> {
  const file = previousPath ?? inputPath;
  return countRecords(file, previousPath ? "ndjson" : detectFormat(file));
}

try {
  await main();
  await agent.close();
} catch (error) {
  fail((error as Error).message);
}
