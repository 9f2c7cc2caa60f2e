/**
 * Batch verification, shared by `npm run verify` (over HTTP) and the gateway's job API
 * (in-process): subjects read from a CSV or NDJSON file, verified in batches with bounded
 * concurrency, one NDJSON result line per input record, written in input order.
 *
 * Resumable: results are appended in order and synced to disk every second, so a run killed at any
 * point leaves complete lines (and perhaps one partial line). Started again, it drops the partial
 * line, skips as many input records as there are complete lines and continues; with the job's
 * application date and issue time kept beside the output, the result is byte for byte what an
 * uninterrupted run writes (Ed25519 signatures are deterministic).
 */

import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  existsSync,
  fdatasyncSync,
  ftruncateSync,
  openSync,
  readSync,
  statSync,
  writeSync,
} from "node:fs";
import { createInterface } from "node:readline";
import { parse as parseCsv } from "csv-parse";
import type { SubjectKind } from "../../policies/policy.ts";

/** One input record. */
export interface InputRecord {
  /** The subject as written, or null when the record carries none (a broken line). */
  subject: string | null;
  /** With `--only-undetermined`: a previous result that stands, copied as it is. */
  keep?: { line: string; outcome: string; reasons: string[] };
}

/** One result line's content. */
export interface ResultLine {
  subject: string | null;
  outcome: string;
  reasons: string[];
  unavailable: string[];
  /** Written only for policies with a quota. */
  quota?: number | null;
  /** Left out with `--no-proofs`, and for a record without a subject. */
  proof?: string | null;
}

export type InputFormat = "csv" | "ndjson";

/** `{"subject","outcome","reasons","unavailable"[,"quota"][,"proof"]}`, keys always in this order. */
export function formatResultLine(result: ResultLine): string {
  const line: Record<string, unknown> = {
    subject: result.subject,
    outcome: result.outcome,
    reasons: result.reasons,
    unavailable: result.unavailable,
  };
  if (result.quota !== undefined && result.quota !== null) line.quota = result.quota;
  if (result.proof) line.proof = result.proof;
  return JSON.stringify(line);
}

/** Outcome and reasons of a result line, for the tally. */
export interface LineOutcome {
  outcome: string;
  reasons: string[];
}

/** The lines of verified subjects, as the gateway encodes them. */
export interface VerifiedLines {
  /** One result line per subject, in order, each ending in a newline (`formatResultLine`'s format). */
  text: Buffer;
  /** Outcome and reasons of each line, in order. */
  outcomes: LineOutcome[];
}

/** The complete lines of NDJSON text (each without its newline). */
export function splitLines(text: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let end = text.indexOf(0x0a); end !== -1; end = text.indexOf(0x0a, start)) {
    lines.push(text.subarray(start, end));
    start = end + 1;
  }
  if (start < text.length) throw new Error("the results end in a partial line");
  return lines;
}

const OUTCOME_KEY = Buffer.from(',"outcome":');
const UNAVAILABLE_KEY = Buffer.from(',"unavailable":');
/** Lines share a few combinations of outcome and reasons: each is parsed once. */
const outcomes = new Map<string, LineOutcome>();

/**
 * Outcome and reasons of a result line (shared, read-only), reading only `"outcome":…,"reasons":[…]`:
 * the keys cannot occur earlier, since a quote inside a JSON string is always escaped.
 */
export function lineOutcome(line: Buffer): LineOutcome {
  const from = line.indexOf(OUTCOME_KEY);
  const to = from === -1 ? -1 : line.indexOf(UNAVAILABLE_KEY, from);
  if (to === -1) throw new Error(`not a result line: ${line.toString("utf8", 0, 200)}`);
  const key = line.toString("latin1", from + 1, to);
  let found = outcomes.get(key);
  if (!found) {
    const result = JSON.parse(`{${line.toString("utf8", from + 1, to)}}`) as Partial<ResultLine>;
    if (typeof result.outcome !== "string" || !Array.isArray(result.reasons)) {
      throw new Error(`not a result line: ${line.toString("utf8", 0, 200)}`);
    }
    found = { outcome: result.outcome, reasons: result.reasons };
    if (outcomes.size < 10_000) outcomes.set(key, found);
  }
  return found;
}

/** The line of a record that carries no subject at all. */
export function missingSubjectLine(withQuota: boolean): ResultLine {
  return {
    subject: null,
    outcome: "INVALID",
    reasons: ["INVALID_ID"],
    unavailable: [],
    ...(withQuota ? { quota: 0 } : {}),
  };
}

/**
 * The format a media type names (`text/csv`, `application/x-ndjson`, `application/jsonl`), or
 * null for any other (`application/octet-stream`, none).
 */
export function formatOfMediaType(contentType: string | undefined): InputFormat | null {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === "text/csv") return "csv";
  if (type === "application/x-ndjson" || type === "application/jsonl") return "ndjson";
  return null;
}

/** The subject columns a CSV header names: a one-column quoted header is one of them. */
const CSV_HEADERS = new Set(["id", "uscc", "subject"]);

/**
 * CSV unless the name or the first line says NDJSON: a first line that is JSON, an object or a
 * string (`"110105198503121015"`). A CSV whose header is quoted (`"id","name"`) is no JSON.
 */
export function detectFormat(path: string): InputFormat {
  if (/\.(nd)?jsonl?$|\.ndjson$/i.test(path)) return "ndjson";
  if (/\.csv$/i.test(path)) return "csv";
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(4096);
    const read = readSync(fd, head, 0, head.length, 0);
    const text = head
      .subarray(0, read)
      .toString("utf8")
      .replace(/^\uFEFF/, "")
      .trimStart();
    if (text[0] === "{") return "ndjson";
    if (text[0] !== '"') return "csv";
    const newline = text.indexOf("\n");
    let first: unknown;
    try {
      first = JSON.parse(newline === -1 ? text : text.slice(0, newline));
    } catch {
      return "csv";
    }
    // `"id"` alone is a quoted CSV header of one column, not a subject.
    return typeof first === "string" && CSV_HEADERS.has(first.trim().toLowerCase())
      ? "csv"
      : "ndjson";
  } finally {
    closeSync(fd);
  }
}

/** The column (CSV) or field (NDJSON) naming the subject, by subject kind. */
export function subjectField(kind: SubjectKind): string {
  return kind === "PERSON" ? "id" : "uscc";
}

/**
 * The longest subject kept as written: an identity number has 18 characters, a credit code 18.
 * A longer one is INVALID without being repeated in its result line (a field of megabytes would
 * be, in every line of the output, and in memory while it is encoded).
 */
const MAX_SUBJECT_LENGTH = 64;

/**
 * The longest record read: a file of one line of hundreds of megabytes would otherwise be held
 * whole in memory (twice, as text) before it could be found INVALID.
 */
export const MAX_RECORD_BYTES = 64 * 1024;

function subjectOf(value: unknown): string | null {
  if (typeof value === "string") return value.length <= MAX_SUBJECT_LENGTH ? value : null;
  // An 18-digit identity number written as a JSON number has already lost its last digits (a
  // double holds 15–17), and what is left may pass the check digit as somebody else's number:
  // only a number that is exactly an integer is taken, as its digits (never a valid id, so INVALID).
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return null;
}

/** An input file the desk must mend (a CSV without the subject's column): not our failure. */
export class InputProblem extends Error {}

/** csv-parse's errors are the file's (an unclosed quote, a record too long): the desk's to mend. */
function csvProblem(error: unknown): unknown {
  const { code, lines, message } = error as { code?: unknown; lines?: unknown; message?: unknown };
  if (typeof code !== "string" || !code.startsWith("CSV_")) return error;
  const where = typeof lines === "number" ? ` (line ${lines})` : "";
  return new InputProblem(`the CSV cannot be read${where}: ${String(message)}`);
}

/** The chunks of a file as they come, failing once a line of it runs past `max` bytes. */
async function* boundedLines(input: AsyncIterable<Buffer>, max: number): AsyncGenerator<Buffer> {
  let run = 0;
  let number = 1;
  const longerThan = (line: number) =>
    new InputProblem(`line ${line} is longer than ${max} bytes: not a subject`);
  for await (const chunk of input) {
    let start = 0;
    for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
      if (run + end - start > max) throw longerThan(number);
      run = 0;
      number++;
      start = end + 1;
    }
    run += chunk.length - start;
    if (run > max) throw longerThan(number);
    yield chunk;
  }
}

/**
 * The lines of a file, each at most `max` bytes (boundedLines' InputProblem past that), CR LF or
 * LF, the last one with or without its newline.
 */
async function* linesOf(input: AsyncIterable<Buffer>, max: number): AsyncGenerator<string> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of boundedLines(input, max)) {
    const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let end = data.indexOf(0x0a); end !== -1; end = data.indexOf(0x0a, start)) {
      yield data.toString("utf8", start, end);
      start = end + 1;
    }
    rest = data.subarray(start);
  }
  if (rest.length > 0) yield rest.toString("utf8");
}

/**
 * The subjects of an input file, one record per CSV row or non-blank NDJSON line. The file is
 * closed when the reader stops early too (a failed or interrupted job).
 */
export async function* readSubjects(
  path: string,
  kind: SubjectKind,
  format: InputFormat = detectFormat(path),
): AsyncGenerator<InputRecord> {
  const field = subjectField(kind);
  const input = createReadStream(path);
  try {
    if (format === "csv") {
      // Rows as arrays, the header read here: about half the cost of csv-parse's column objects.
      // Each row is taken as csv-parse finds it (synchronously, while a chunk is written), not
      // read from the stream: a broken record destroys the stream, and the rows before it still
      // buffered there would be lost with it.
      const rows: string[][] = [];
      const parser = parseCsv({
        bom: true,
        skip_empty_lines: true,
        relax_column_count: true,
        relax_quotes: true,
        trim: true,
        // A quote left open gathers every later line into one field: bounded too.
        max_record_size: MAX_RECORD_BYTES,
        on_record: (record: string[]) => {
          rows.push(record);
          return null;
        },
      });
      // Its error is read from `errored` after each write; the event itself is expected.
      parser.on("error", () => {});
      let names: string[] | null = null;
      let column = -1;
      let fallback = -1;
      const taken = function* (): Generator<InputRecord> {
        for (const row of rows.splice(0)) {
          if (names === null) {
            // As csv-parse's `columns` would name them; of two columns of one name the last counts.
            names = row.map((name) => name.trim().toLowerCase());
            column = names.lastIndexOf(field);
            fallback = names.lastIndexOf("subject");
            continue;
          }
          if (column === -1 && fallback === -1) {
            throw new InputProblem(
              `the CSV header has no "${field}" (or "subject") column: ${names.join(",").slice(0, 200)}`,
            );
          }
          yield { subject: subjectOf(row[column] ?? row[fallback]) };
        }
        if (parser.errored) throw csvProblem(parser.errored);
      };
      try {
        for await (const chunk of boundedLines(input as AsyncIterable<Buffer>, MAX_RECORD_BYTES)) {
          parser.write(chunk);
          yield* taken();
        }
        // The last record (a line without its newline, a quote never closed) comes at the end.
        const ended = new Promise<void>((resolve) => {
          parser.once("finish", resolve);
          parser.once("close", resolve);
        });
        parser.end();
        await ended;
        yield* taken();
      } finally {
        parser.destroy();
      }
      return;
    }
    const lines = linesOf(input as AsyncIterable<Buffer>, MAX_RECORD_BYTES);
    try {
      for await (const raw of lines) {
        const line = raw.replace(/^\uFEFF/, "").trim();
        if (line === "") continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          yield { subject: null };
          continue;
        }
        if (value && typeof value === "object" && !Array.isArray(value)) {
          const object = value as Record<string, unknown>;
          yield { subject: subjectOf(object[field] ?? object.subject) };
        } else {
          yield { subject: subjectOf(value) };
        }
      }
    } finally {
      await lines.return(undefined);
    }
  } finally {
    input.destroy();
  }
}

/**
 * Why a file cannot be verified as it is, found by reading its first record (null: it can). A
 * job's upload is checked so before it is accepted.
 */
export async function inputProblem(
  path: string,
  kind: SubjectKind,
  format: InputFormat,
): Promise<string | null> {
  const records = readSubjects(path, kind, format);
  try {
    await records.next();
    return null;
  } catch (error) {
    if (error instanceof InputProblem) return error.message;
    throw error;
  } finally {
    await records.return(undefined);
  }
}

/**
 * A previous run's output, for `--only-undetermined`: UNDETERMINED lines are verified again,
 * every other line stands as it is.
 */
export async function* readPreviousResults(path: string): AsyncGenerator<InputRecord> {
  const lines = createInterface({
    input: createReadStream(path),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let number = 0;
  for await (const line of lines) {
    number++;
    if (line.trim() === "") continue;
    let result: ResultLine;
    try {
      result = JSON.parse(line) as ResultLine;
    } catch {
      throw new Error(`${path}:${number}: not a result line`);
    }
    if (result.outcome === "UNDETERMINED" && typeof result.subject === "string") {
      yield { subject: result.subject };
    } else {
      yield {
        subject: result.subject,
        keep: { line, outcome: result.outcome, reasons: result.reasons ?? [] },
      };
    }
  }
}

/** Lines (records) of a file, for a progress total; quick, approximate for CSV with quoted newlines. */
export async function countRecords(path: string, format: InputFormat): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let index = chunk.indexOf(0x0a); index !== -1; index = chunk.indexOf(0x0a, index + 1)) {
      lines++;
    }
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  if (last !== 0x0a) lines++;
  return Math.max(0, format === "csv" ? lines - 1 : lines);
}

/** An identity of the input file, so that a resumed run refuses an input that changed. */
export function fingerprint(path: string): { size: number; sha256: string } {
  const { size } = statSync(path);
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    // Head and tail: enough to catch an edited or replaced file without reading gigabytes.
    const buffer = Buffer.alloc(Math.min(size, 1 << 20));
    hash.update(buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)));
    if (size > buffer.length) {
      hash.update(buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, size - buffer.length)));
    }
  } finally {
    closeSync(fd);
  }
  return { size, sha256: hash.digest("hex") };
}

/** Counts per outcome and per reason. */
export class Tally {
  readonly byOutcome: Record<string, number> = {};
  readonly byReason: Record<string, number> = {};
  total = 0;

  add(outcome: string, reasons: readonly string[]): void {
    this.total++;
    this.byOutcome[outcome] = (this.byOutcome[outcome] ?? 0) + 1;
    for (const reason of reasons) this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
  }

  toJSON() {
    return { total: this.total, byOutcome: this.byOutcome, byReason: this.byReason };
  }
}

/**
 * Opens an output for appending after a previous run: drops a partial last line, and counts and
 * tallies the complete ones (their records are skipped on input).
 */
export async function resumeOutput(path: string): Promise<{ done: number; tally: Tally }> {
  const tally = new Tally();
  if (!existsSync(path)) return { done: 0, tally };
  let complete = 0;
  let offset = 0;
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let end = data.indexOf(0x0a); end !== -1; end = data.indexOf(0x0a, start)) {
      const line = data.subarray(start, end).toString("utf8");
      try {
        const result = JSON.parse(line) as ResultLine;
        tally.add(result.outcome, result.reasons ?? []);
      } catch {
        throw new Error(
          `${path}: line ${complete + 1} is not a result line; is this the output of another program?`,
        );
      }
      complete = offset + end + 1;
      start = end + 1;
    }
    offset += start;
    rest = data.subarray(start);
  }
  if (rest.length > 0) {
    const fd = openSync(path, "r+");
    try {
      ftruncateSync(fd, complete);
    } finally {
      closeSync(fd);
    }
  }
  return { done: tally.total, tally };
}

export interface BatchRunOptions {
  records: AsyncIterable<InputRecord>;
  /** Output file; appended to (after `resumeOutput`). */
  output: string;
  /** Records already done in a previous run: skipped. */
  skip: number;
  /** Verifies subjects, giving one result line per subject in the same order. */
  verify: (subjects: string[]) => Promise<VerifiedLines>;
  batchSize: number;
  concurrency: number;
  withQuota: boolean;
  /** After each batch is written (in order): records done so far, the batch's outcomes. */
  onWritten?: (done: number, outcomes: readonly LineOutcome[]) => void;
  /** Stops reading input; batches in flight are still written. */
  signal?: AbortSignal;
}

/** How often results are forced to disk. */
const SYNC_INTERVAL_MS = 1000;

/** Appends results strictly in input order, whatever order the batches finish in. */
class OrderedOutput {
  private readonly fd: number;
  private readonly pending = new Map<number, { text: Buffer; outcomes: LineOutcome[] }>();
  private next = 0;
  private syncedAt = Date.now();
  private closed = false;

  constructor(
    path: string,
    private done: number,
    private readonly onWritten?: BatchRunOptions["onWritten"],
  ) {
    this.fd = openSync(path, "a", 0o600); // results name people: the operator's alone
  }

  put(sequence: number, text: Buffer, outcomes: LineOutcome[]): void {
    // A closed descriptor's number is soon another file's, or a connection's: never written to.
    if (this.closed) throw new Error("results written after their file was closed");
    this.pending.set(sequence, { text, outcomes });
    for (let batch = this.pending.get(this.next); batch; batch = this.pending.get(this.next)) {
      this.pending.delete(this.next++);
      const bytes = batch.text;
      for (let written = 0; written < bytes.length; ) {
        written += writeSync(this.fd, bytes, written);
      }
      this.done += batch.outcomes.length;
      this.onWritten?.(this.done, batch.outcomes);
    }
    if (Date.now() - this.syncedAt >= SYNC_INTERVAL_MS) {
      fdatasyncSync(this.fd);
      this.syncedAt = Date.now();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fdatasyncSync(this.fd);
    closeSync(this.fd);
  }
}

/** Verifies every record after `skip`; resolves with the number of records done. */
export async function runBatch(options: BatchRunOptions): Promise<number> {
  const output = new OrderedOutput(options.output, options.skip, options.onWritten);
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  let sequence = 0;
  let seen = 0;
  let done = options.skip;

  const start = (records: InputRecord[]) => {
    const current = sequence++;
    const task = verifyRecords(options, records)
      .then(({ text, outcomes }) => {
        if (failure === null) {
          output.put(current, text, outcomes);
          done += outcomes.length;
        }
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  };

  let unreadable: unknown = null;
  let batch: InputRecord[] = [];
  try {
    for await (const record of options.records) {
      if (seen++ < options.skip) continue;
      batch.push(record);
      if (batch.length < options.batchSize) continue;
      while (inFlight.size >= options.concurrency && failure === null) await Promise.race(inFlight);
      if (failure !== null || options.signal?.aborted) break;
      start(batch);
      batch = [];
    }
    if (batch.length > 0 && failure === null && !options.signal?.aborted) start(batch);
  } catch (error) {
    // The input stops being readable (a broken record): what was read before it is verified and
    // written, in order, before the run fails with the input's problem.
    unreadable = error;
    if (batch.length > 0 && failure === null && !options.signal?.aborted) start(batch);
  } finally {
    // Every batch in flight ends before the file is closed, whatever stopped the reading.
    await Promise.allSettled(inFlight);
    output.close();
  }
  if (failure !== null) throw failure;
  if (unreadable !== null) throw unreadable;
  return done;
}

async function verifyRecords(
  options: BatchRunOptions,
  records: InputRecord[],
): Promise<VerifiedLines> {
  const subjects = records
    .filter((record) => !record.keep && record.subject !== null)
    .map((record) => record.subject as string);
  const verified: VerifiedLines =
    subjects.length > 0 ? await options.verify(subjects) : { text: Buffer.alloc(0), outcomes: [] };
  if (verified.outcomes.length !== subjects.length) {
    throw new Error(
      `asked about ${subjects.length} subjects, got ${verified.outcomes.length} verdicts`,
    );
  }
  // Every record verified: the lines are the batch's output as they came.
  if (subjects.length === records.length) return verified;
  const lines = splitLines(verified.text);
  if (lines.length !== subjects.length) {
    throw new Error(`asked about ${subjects.length} subjects, got ${lines.length} result lines`);
  }
  const newline = Buffer.from("\n");
  const text: Buffer[] = [];
  const outcomes: LineOutcome[] = [];
  let next = 0;
  for (const record of records) {
    if (record.keep) {
      text.push(Buffer.from(`${record.keep.line}\n`));
      outcomes.push(record.keep);
    } else if (record.subject === null) {
      const missing = missingSubjectLine(options.withQuota);
      text.push(Buffer.from(`${formatResultLine(missing)}\n`));
      outcomes.push(missing);
    } else {
      text.push(lines[next] as Buffer, newline);
      outcomes.push(verified.outcomes[next] as LineOutcome);
      next++;
    }
  }
  return { text: Buffer.concat(text), outcomes };
}
