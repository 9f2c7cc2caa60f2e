/**
 * Importing a department's export (`records.md`, "Import rules"): lines stream through
 * `parseRecord` into the department's writer inside one explicit transaction, so a file either
 * lands whole or not at all, and memory stays flat however many lines the file has.
 */
import { closeSync, createReadStream, existsSync, openSync, statSync, writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { parse as parseCsvRecord } from "csv-parse/sync";
import { departmentModules } from "../subgraphs/registry.ts";
import { DEPARTMENTS, type Department } from "./departments.ts";
import { type AnyRecord, KINDS, parseRecord } from "./records.ts";
import { type DepartmentDatabase, openDepartmentDatabase } from "./sqlite.ts";

export type ExportFormat = "ndjson" | "csv";

export interface IngestOptions {
  /** Directory of the department databases (default: `DATA_DIR` or `./data`). */
  dir?: string;
  /** `csv`: a header row names the columns and an empty cell is an absent field. Default `ndjson`. */
  format?: ExportFormat;
  /** Import the valid lines even when some lines are bad (instead of importing nothing). */
  acceptValid?: boolean;
  /** Write every bad line to this file as NDJSON `{ line, reason, text }`. */
  rejectsFile?: string;
  /** How many bad lines the summary lists (default 100); the rest are only counted. */
  maxProblems?: number;
}

export interface LineProblem {
  /** Line number in the file, starting at 1 (a CSV header is line 1). */
  line: number;
  reason: string;
}

export interface IngestSummary {
  department: Department;
  /** Non-empty lines read (CSV: records after the header). */
  lines: number;
  /** Records written (0 when the file was rolled back). */
  imported: number;
  rejected: number;
  /** Records written, per kind. */
  byKind: Record<string, number>;
  /** The first bad lines (at most `maxProblems`), in file order. */
  problems: LineProblem[];
  /** False when bad lines made the whole file roll back. */
  committed: boolean;
  elapsedMs: number;
}

/** A failure the caller is expected to explain to the user (no stack trace needed). */
export class IngestError extends Error {
  override name = "IngestError";
}

interface ExportLine {
  line: number;
  /** The line as read (CSV: the whole record, which may span lines), for the rejects file. */
  text: string;
  value?: unknown;
  /** Set when the line could not even be parsed as JSON or CSV. */
  problem?: string;
}

const BYTE_ORDER_MARK = "\uFEFF";

function cleanLine(raw: string, lineNumber: number): string {
  const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  return lineNumber === 1 && line.startsWith(BYTE_ORDER_MARK) ? line.slice(1) : line;
}

async function* ndjsonLines(lines: AsyncIterable<string>): AsyncGenerator<ExportLine> {
  let lineNumber = 0;
  for await (const raw of lines) {
    lineNumber++;
    const text = cleanLine(raw, lineNumber);
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      yield { line: lineNumber, text, problem: `not valid JSON: ${(error as Error).message}` };
      continue;
    }
    yield { line: lineNumber, text, value };
  }
}

function quoteCount(text: string): number {
  let count = 0;
  for (let at = text.indexOf('"'); at >= 0; at = text.indexOf('"', at + 1)) count++;
  return count;
}

/**
 * Most lines one CSV record may span. A cell may hold line breaks (an address), but a stray quote
 * (`Zhang "Wei`) would otherwise join every later line to one record: memory growing with the
 * file, and every valid line after it lost in one rejected record.
 */
export const MAX_CSV_RECORD_LINES = 100;

/**
 * CSV records with the header's column names. A record whose quotes are still open at the end of a
 * line continues on the next one (an address may hold a line break), and carries the number of
 * the line where it starts. A quote still open after `MAX_CSV_RECORD_LINES` lines rejects the
 * line where it opened, and the lines after it are read again as records of their own.
 */
async function* csvLines(lines: AsyncIterable<string>): AsyncGenerator<ExportLine> {
  let header: string[] | null = null;
  let lineNumber = 0;
  /** The lines of the record being read, with their numbers. */
  let pending: Array<{ line: string; number: number }> = [];
  let pendingQuotes = 0;
  /** Lines to read again, after a record whose quote never closed. */
  const replay: Array<{ line: string; number: number }> = [];
  const input = lines[Symbol.asyncIterator]();
  for (;;) {
    let next = replay.shift();
    if (!next) {
      const read = await input.next();
      if (read.done) break;
      lineNumber++;
      next = { line: cleanLine(read.value, lineNumber), number: lineNumber };
    }
    if (pending.length === 0 && next.line.trim() === "") continue;
    pending.push(next);
    pendingQuotes += quoteCount(next.line);
    if (pendingQuotes % 2 === 1) {
      if (pending.length < MAX_CSV_RECORD_LINES) continue;
      const [opened, ...rest] = pending as [{ line: string; number: number }];
      yield {
        line: opened.number,
        text: opened.line,
        problem: `a quoted cell opened on this line is not closed within ${MAX_CSV_RECORD_LINES} lines`,
      };
      replay.unshift(...rest);
      pending = [];
      pendingQuotes = 0;
      continue;
    }
    const startLine = (pending[0] as { number: number }).number;
    const text = pending.map((part) => part.line).join("\n");
    pending = [];
    pendingQuotes = 0;
    let cells: string[];
    try {
      cells = (parseCsvRecord(text, { relax_column_count: true }) as string[][])[0] ?? [];
    } catch (error) {
      yield { line: startLine, text, problem: `not valid CSV: ${(error as Error).message}` };
      continue;
    }
    if (header === null) {
      header = cells.map((cell) => cell.trim());
      continue;
    }
    if (cells.length !== header.length) {
      const problem = `has ${cells.length} cells where the header has ${header.length}`;
      yield { line: startLine, text, problem };
      continue;
    }
    const value: Record<string, string> = {};
    header.forEach((name, index) => {
      const cell = cells[index] ?? "";
      if (cell !== "") value[name] = cell;
    });
    yield { line: startLine, text, value };
  }
  if (pending.length > 0) {
    yield {
      line: (pending[0] as { number: number }).number,
      text: pending.map((part) => part.line).join("\n"),
      problem: "a quoted cell is not closed by the end of the file",
    };
  }
}

function openRejectsFile(path: string): number {
  try {
    return openSync(path, "w");
  } catch (error) {
    throw new IngestError(
      `cannot write the rejects file ${path}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
}

/** The department whose kind this is, when it is not the importing department's. */
function ownerOfKind(department: Department, value: unknown): Department | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const kind = (value as { kind?: unknown }).kind;
  if (typeof kind !== "string" || Object.hasOwn(KINDS[department], kind)) return undefined;
  return DEPARTMENTS.find((other) => Object.hasOwn(KINDS[other], kind));
}

/**
 * Imports a department's export from its lines (NDJSON, or CSV with `format: "csv"`). Valid
 * records are upserted on their natural keys, so importing the same file again changes nothing.
 * By default any bad line rolls the whole file back; `acceptValid` keeps the good lines.
 */
export async function ingestRecords(
  department: Department,
  lines: AsyncIterable<string>,
  options: IngestOptions = {},
): Promise<IngestSummary> {
  const started = performance.now();
  const module = departmentModules[department];
  const maxProblems = options.maxProblems ?? 100;
  const acceptValid = options.acceptValid ?? false;
  const summary: IngestSummary = {
    department,
    lines: 0,
    imported: 0,
    rejected: 0,
    byKind: {},
    problems: [],
    committed: false,
    elapsedMs: 0,
  };
  const rejects = options.rejectsFile ? openRejectsFile(options.rejectsFile) : null;
  let database: DepartmentDatabase;
  try {
    database = openDepartmentDatabase(department, module.tables, { dir: options.dir });
  } catch (error) {
    if (rejects !== null) closeSync(rejects);
    throw error;
  }
  try {
    const write = module.writer(database.db) as (record: AnyRecord) => void;
    // better-sqlite3's transaction() cannot span the awaits of a stream, hence explicit
    // statements; IMMEDIATE takes the write lock now rather than failing halfway through.
    database.sqlite.exec("BEGIN IMMEDIATE");
    try {
      const entries = options.format === "csv" ? csvLines(lines) : ndjsonLines(lines);
      for await (const entry of entries) {
        summary.lines++;
        const parsed =
          entry.problem === undefined
            ? parseRecord(department, entry.value)
            : ({ ok: false, reason: entry.problem } as const);
        if (!parsed.ok) {
          const owner = ownerOfKind(department, entry.value);
          const reason = owner ? `${parsed.reason}; it belongs to ${owner}` : parsed.reason;
          summary.rejected++;
          if (summary.problems.length < maxProblems) {
            summary.problems.push({ line: entry.line, reason });
          }
          if (rejects !== null) {
            writeSync(
              rejects,
              `${JSON.stringify({ line: entry.line, reason, text: entry.text })}\n`,
            );
          }
          continue;
        }
        // Once a line is bad without acceptValid the file will roll back: only validate the rest.
        if (summary.rejected > 0 && !acceptValid) continue;
        write(parsed.record);
        summary.imported++;
        summary.byKind[parsed.record.kind] = (summary.byKind[parsed.record.kind] ?? 0) + 1;
      }
    } catch (error) {
      // SQLite may already have rolled back (e.g. a full disk); keep the original error.
      if (database.sqlite.inTransaction) database.sqlite.exec("ROLLBACK");
      throw error;
    }
    if (summary.rejected > 0 && !acceptValid) {
      database.sqlite.exec("ROLLBACK");
      summary.imported = 0;
      summary.byKind = {};
    } else {
      database.sqlite.exec("COMMIT");
      summary.committed = true;
    }
  } finally {
    if (rejects !== null) closeSync(rejects);
    database.close();
  }
  summary.elapsedMs = performance.now() - started;
  return summary;
}

export interface IngestFileOptions extends IngestOptions {
  /** Called as the file is read, for a progress display. */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
}

/** The export format a file name implies: `.csv` is CSV, anything else NDJSON. */
export function formatOfFile(path: string): ExportFormat {
  return path.toLowerCase().endsWith(".csv") ? "csv" : "ndjson";
}

/** Imports an export file (see `ingestRecords`); the format follows the file name unless given. */
export async function ingestFile(
  department: Department,
  path: string,
  options: IngestFileOptions = {},
): Promise<IngestSummary> {
  let totalBytes: number;
  let fd: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new IngestError(`${path} is not a file`);
    totalBytes = stat.size;
    // The rejects file is opened for writing (emptied) before the input is read: naming the input
    // itself would destroy the export.
    if (options.rejectsFile !== undefined && existsSync(options.rejectsFile)) {
      const rejects = statSync(options.rejectsFile);
      if (rejects.dev === stat.dev && rejects.ino === stat.ino) {
        throw new IngestError(`the rejects file ${options.rejectsFile} is the input file`);
      }
    }
    // Opened here, not by the stream: a file that cannot be opened (EACCES) is a clear refusal
    // rather than an error event the line reader would not pass on.
    fd = openSync(path, "r");
  } catch (error) {
    if (error instanceof IngestError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new IngestError(
      code === "ENOENT" ? `no such file: ${path}` : `cannot read ${path}: ${code}`,
    );
  }
  const input = createReadStream(path, { fd });
  const { onProgress } = options;
  if (onProgress) {
    let bytesRead = 0;
    input.on("data", (chunk) => {
      bytesRead += chunk.length;
      onProgress(bytesRead, totalBytes);
    });
  }
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    return await ingestRecords(department, lines, {
      ...options,
      format: options.format ?? formatOfFile(path),
    });
  } finally {
    lines.close();
    input.destroy();
  }
}
