/**
 * The audit ledger's file, `DATA_DIR/audit.db`: append-only SQLite with a hash chain.
 *
 * - `contexts`: what the requests of one desk, purpose and plan share — desk, purpose and legal
 *   basis, operation name and hash, the departments that answered, and its selections: the lists
 *   of facts disclosed and withheld (`Type.field`) that its subjects share — stored once, found by
 *   `digest` (the SHA-256 of its columns as JSON). Those were ≈ 450 of a request row's ≈ 600
 *   bytes, written again for every request (format 1).
 * - `requests`: one row per request that touched personal or organisational data (a verification:
 *   one per combination of departments its subjects were asked of) — when, its id,
 *   case id, its context — and `hash`, the SHA-256 of the request's whole content: the JSON of
 *   `requestColumns`, its own columns and its context's, as format 1 stored them in one row, so a
 *   format-1 ledger migrates (`migrateFromFormat1`) without changing a hash of its chain. The view
 *   `request_details` shows requests with their contexts' columns.
 * - `entries`: one row per subject touched by that request — the subject, which of the request's
 *   selections applies to it, the outcome — each carrying `prev_hash` (the previous entry's hash)
 *   and `hash = sha256(prev_hash "\n" seq TAB request TAB request-hash TAB subject TAB selection
 *   TAB outcome)`. Editing any row (entry, request or context), deleting or reordering entries
 *   breaks the chain from the first entry it touches on; `verifyChain` names that entry. (Subjects
 *   are upper-case letters and digits, so the tab-separated form is unambiguous.)
 * - Triggers refuse UPDATE and DELETE, so no code path of the platform can rewrite history; the
 *   chain catches whoever edits the file around them.
 * - `ledger_state.head_*` records the last entry; a truncated tail shows as a head mismatch, and
 *   publishing the head (`npm run audit -- head`) anchors it outside the file.
 * - `subject_index` is derived data (subject → entry), filled in bulk, sorted, when the ledger is
 *   idle: indexing each entry as it is written would cost a random B-tree insert per subject on the
 *   request path. Queries read the index plus the not-yet-indexed tail.
 */
import { hash } from "node:crypto";
import { mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { removeFile } from "../../common/files.ts";
import {
  abandonedJournals,
  formatPosition,
  journalStateKey,
  parsePosition,
  readJournal,
  removeJournalLock,
  removeOrphanLocks,
  scanJournal,
} from "./journal.ts";
import { JsonFragments, OUTCOME_OF_LETTER, type Selection, type WireRecord } from "./wire.ts";

export type Sqlite = Database.Database;
type Statement = Database.Statement;

export const GENESIS_HASH = "0".repeat(64);

export function auditDatabasePath(dir: string): string {
  return join(dir, "audit.db");
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS contexts (
  seq INTEGER PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  desk_id TEXT,
  desk_name TEXT,
  purpose TEXT,
  legal_basis TEXT,
  operation_name TEXT,
  operation_hash TEXT NOT NULL,
  departments TEXT NOT NULL,
  selections TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  request_id TEXT NOT NULL,
  case_id TEXT,
  context INTEGER NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
  seq INTEGER PRIMARY KEY,
  request INTEGER NOT NULL,
  subject TEXT NOT NULL,
  selection INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_index (
  subject TEXT NOT NULL,
  entry INTEGER NOT NULL,
  PRIMARY KEY (subject, entry)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIEW IF NOT EXISTS request_details AS
  SELECT r.seq, r.at, r.request_id, c.desk_id, c.desk_name, c.purpose, c.legal_basis, r.case_id,
         c.operation_name, c.operation_hash, c.departments, c.selections, r.context, r.hash
  FROM requests r JOIN contexts c ON c.seq = r.context;
${["entries", "requests", "contexts"]
  .map(
    (table) => `
CREATE TRIGGER IF NOT EXISTS ${table}_no_update BEFORE UPDATE ON ${table}
  BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ${table}_no_delete BEFORE DELETE ON ${table}
  BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;`,
  )
  .join("")}
`;

/**
 * The layout of `audit.db` (SQLite `user_version`). Format 1 (a request's context in its own row)
 * is migrated when opened; a file of another layout is refused.
 */
export const LEDGER_FORMAT = 2;

export interface OpenOptions {
  /**
   * Open an existing ledger (the CLI): no new file, no schema created — but a format-1 file is
   * migrated, as the CLI also moves abandoned journals into it.
   */
  existing?: boolean;
  /** `full`: the WAL is fsynced at every commit; `normal`: at checkpoints only. */
  sync?: "full" | "normal";
  /** Told when a format-1 file was migrated to this format. */
  migrated?: (report: Migration) => void;
  /** How long a write waits for another connection's lock before SQLITE_BUSY (default 5 s). */
  busyTimeoutMs?: number;
}

export function openAuditDatabase(dir: string, options: OpenOptions = {}): Sqlite {
  if (!options.existing) mkdirSync(dir, { recursive: true });
  // Not opened read-only even to read: a read-only connection cannot open a WAL file whose
  // shared-memory index is missing (the gateway stopped cleanly and removed it).
  const sqlite = new Database(auditDatabasePath(dir), { fileMustExist: options.existing ?? false });
  sqlite.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  const format = sqlite.pragma("user_version", { simple: true }) as number;
  const empty =
    (sqlite.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number }).n === 0;
  if (!empty && format !== LEDGER_FORMAT && format !== 1) {
    sqlite.close();
    throw new Error(
      `${auditDatabasePath(dir)} has ledger format ${format}, this gateway reads formats 1 and ${LEDGER_FORMAT}: archive the file (and verify it with the version that wrote it) before starting a new ledger`,
    );
  }
  if (!options.existing) sqlite.pragma("journal_mode = WAL");
  if (!empty && format === 1) {
    let report: Migration;
    try {
      report = migrateFromFormat1(sqlite); // rolled back whole if it fails
    } catch (error) {
      sqlite.close();
      throw new Error(
        `${auditDatabasePath(dir)}: migrating ledger format 1 to ${LEDGER_FORMAT} failed, the file is unchanged: ${(error as Error).message}`,
      );
    }
    options.migrated?.(report);
  } else if (!options.existing) {
    sqlite.exec(SCHEMA);
    sqlite.pragma(`user_version = ${LEDGER_FORMAT}`);
  }
  sqlite.pragma(`synchronous = ${options.sync === "normal" ? "NORMAL" : "FULL"}`);
  return sqlite;
}

/**
 * How `ledger_state` rows are written: an upsert, not INSERT OR REPLACE. Replacing deletes the row
 * and inserts it again, which rewrites the primary-key index's page as well as the table's — two
 * of the five pages a small commit wrote to the log; updating the value in place leaves the index
 * alone.
 */
const SET_STATE = "ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/** A `ledger_state` row written in the same transaction as the entries. */
/**
 * A `ledger_state` row written with the entries; with `expected`, the row must hold that value
 * (`null`: no row) or nothing is appended (`JournalTaken`).
 */
export type StateUpdate = readonly [name: string, value: string, expected?: string | null];

/** The journal's lines were moved by another gateway, which judged its owner stopped. */
export class JournalTaken extends Error {
  constructor(
    message: string,
    /** Where the other gateway left the journal (`ledger_state`), or null. */
    readonly current: string | null,
  ) {
    super(message);
  }
}

/** Rows per INSERT statement: one statement per 64 rows costs far less than 64 statements. */
const ROWS_PER_INSERT = 64;

const ENTRY_COLUMNS = [
  "seq",
  "request",
  "subject",
  "selection",
  "outcome",
  "prev_hash",
  "hash",
] as const;

interface RowInserter {
  /** The values of one row, in the inserter's column order. */
  add(...values: unknown[]): void;
  /** Inserts the rows added and not yet inserted. */
  flush(): void;
  /** Forgets rows added and not inserted (a transaction that failed). */
  reset(): void;
}

/**
 * Inserts rows into `table` a statement of up to `ROWS_PER_INSERT` rows at a time. One statement
 * per row count, prepared when first needed, so a transaction runs at most two shapes per table.
 */
function rowInserter(sqlite: Sqlite, table: string, columns: readonly string[]): RowInserter {
  const statements = new Map<number, Statement>();
  const pending: unknown[] = [];
  const flush = (): void => {
    const rows = pending.length / columns.length;
    if (rows === 0) return;
    let statement = statements.get(rows);
    if (!statement) {
      const row = `(${columns.map(() => "?").join(", ")})`;
      statement = sqlite.prepare(
        `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${Array(rows).fill(row).join(", ")}`,
      );
      statements.set(rows, statement);
    }
    // As arguments, not as one array: better-sqlite3 reads an array's elements one V8 property
    // lookup at a time, and a call's arguments directly — a fifth of the writer's CPU per batch
    // subject (`npm run bench:ledger`: 4.3 → 3.5 µs; docs/performance.md).
    statement.run(...pending);
    pending.length = 0;
  };
  return {
    add(...values) {
      pending.push(...values);
      if (pending.length === ROWS_PER_INSERT * columns.length) flush();
    },
    flush,
    reset() {
      pending.length = 0;
    },
  };
}

/** A request's columns as `requests` stores them. */
const STORED_REQUEST_COLUMNS = ["seq", "at", "request_id", "case_id", "context", "hash"] as const;

/**
 * Finds or adds the `contexts` row of a request's context, for the appender and the migration.
 * Consecutive requests mostly share their context (one desk's load): it is compared column by
 * column with the previous one (the same string objects, so each comparison is one pointer),
 * then looked up by its JSON text, then by its digest in the file (written by another process,
 * or before a restart), and only then inserted. `forget` after a transaction that failed: the
 * contexts it inserted are gone.
 */
class ContextRows {
  private readonly known = new Map<string, number>();
  private last: { row: ContextColumns; seq: number } | null = null;
  private readonly find: Statement;
  private readonly insert: Statement;

  constructor(
    sqlite: Sqlite,
    private readonly encoder: RequestEncoder,
  ) {
    this.find = sqlite.prepare("SELECT seq FROM contexts WHERE digest = ?").pluck();
    this.insert = sqlite.prepare(
      `INSERT INTO contexts (digest, ${CONTEXT_COLUMNS.join(", ")}) VALUES (?${", ?".repeat(CONTEXT_COLUMNS.length)})`,
    );
  }

  seqOf(row: ContextColumns): number {
    const last = this.last;
    if (last && sameContext(last.row, row)) return last.seq;
    const text = this.encoder.context(row);
    let seq = this.known.get(text);
    if (seq === undefined) {
      const digest = sha256(text);
      seq =
        (this.find.get(digest) as number | undefined) ??
        Number(
          this.insert.run(digest, ...CONTEXT_COLUMNS.map((column) => row[column])).lastInsertRowid,
        );
      // A few desks, purposes and plans: the bound only guards memory.
      if (this.known.size >= 10_000) this.known.clear();
      this.known.set(text, seq);
    }
    this.last = { row, seq };
    return seq;
  }

  forget(): void {
    this.known.clear();
    this.last = null;
  }
}

function sameContext(a: ContextColumns, b: ContextColumns): boolean {
  for (const column of CONTEXT_COLUMNS) if (a[column] !== b[column]) return false;
  return true;
}

/**
 * Appends records to the ledger, each in the chain after the current head, all in one
 * transaction (BEGIN IMMEDIATE: the head is read under the write lock, so writers on other
 * connections — another gateway process, `npm run audit` moving an abandoned journal — chain
 * after it too), with `state` (how far a journal has been moved) in the same transaction.
 * Returns the number of entries written.
 */
export function recordAppender(
  sqlite: Sqlite,
): (records: readonly WireRecord[], state?: StateUpdate) => number {
  const insertRequests = rowInserter(sqlite, "requests", STORED_REQUEST_COLUMNS);
  const insertEntries = rowInserter(sqlite, "entries", ENTRY_COLUMNS);
  const lastEntry = sqlite.prepare("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1");
  const lastRequest = sqlite.prepare("SELECT max(seq) AS seq FROM requests");
  const recordedHead = sqlite.prepare(
    "SELECT name, value FROM ledger_state WHERE name IN ('head_seq', 'head_hash')",
  );
  const setHead = sqlite.prepare(
    `INSERT INTO ledger_state (name, value) VALUES ('head_seq', ?), ('head_hash', ?) ${SET_STATE}`,
  );
  const setState = sqlite.prepare(
    `INSERT INTO ledger_state (name, value) VALUES (?, ?) ${SET_STATE}`,
  );
  const getState = sqlite.prepare("SELECT value FROM ledger_state WHERE name = ?").pluck();
  const encoder = new RequestEncoder();
  const contexts = new ContextRows(sqlite, encoder);
  const append = sqlite.transaction((records: readonly WireRecord[], state?: StateUpdate) => {
    insertRequests.reset();
    insertEntries.reset();
    if (state && state[2] !== undefined) {
      const current = (getState.get(state[0]) as string | undefined) ?? null;
      if (current !== state[2]) {
        throw new JournalTaken(
          `${state[0]} is at ${current ?? "its start"} in audit.db, not at ${state[2] ?? "its start"} where this gateway left it: another gateway moved the journal`,
          current,
        );
      }
    }
    const head = lastEntry.get() as { seq: number; hash: string } | undefined;
    checkHead(head, recordedHead.all() as Array<{ name: string; value: string }>);
    let seq = head?.seq ?? 0;
    let prev = head?.hash ?? GENESIS_HASH;
    let requestSeq = (lastRequest.get() as { seq: number | null }).seq ?? 0;
    let written = 0;
    for (const record of records) {
      requestSeq++;
      const row: RequestRow = {
        seq: requestSeq,
        at: record.at,
        request_id: record.requestId,
        desk_id: record.deskId,
        desk_name: record.deskName,
        purpose: record.purpose,
        legal_basis: record.legalBasis,
        case_id: record.caseId,
        operation_name: record.operationName,
        operation_hash: record.operationHash,
        departments: encoder.departments(record.departments),
        selections: encoder.selections(record.selections),
      };
      const ofRequest = sha256(encoder.columns(row));
      insertRequests.add(
        row.seq,
        row.at,
        row.request_id,
        row.case_id,
        contexts.seqOf(row),
        ofRequest,
      );
      const subjects = record.subjects.split("\n");
      for (let index = 0; index < subjects.length; index++) {
        seq++;
        const entry = {
          seq,
          request: requestSeq,
          subject: subjects[index] as string,
          selection: record.picks[index] ?? 0,
          outcome: OUTCOME_OF_LETTER[record.outcomes[index] ?? "f"] ?? "failed",
        };
        const hash = entryHash(prev, entry, ofRequest);
        insertEntries.add(
          entry.seq,
          entry.request,
          entry.subject,
          entry.selection,
          entry.outcome,
          prev,
          hash,
        );
        prev = hash;
      }
      written += subjects.length;
    }
    insertRequests.flush();
    insertEntries.flush();
    if (written > 0) setHead.run(String(seq), prev);
    if (state) setState.run(state[0], state[1]);
    return written;
  });
  return (records, state) => {
    try {
      return append.immediate(records, state);
    } catch (error) {
      contexts.forget(); // rolled back: the contexts it added are not in the file
      throw error;
    }
  };
}

/**
 * The last entry must be the head the ledger recorded with it: entries removed from the end would
 * otherwise be written over by the next appends, chained after what is left, and the chain would
 * verify again — the evidence of the removal erased by the gateway itself. Refusing to write makes
 * the gateway answer `AUDIT_UNAVAILABLE` (nothing disclosed) until the ledger is looked at.
 */
function checkHead(
  last: { seq: number; hash: string } | undefined,
  recorded: ReadonlyArray<{ name: string; value: string }>,
): void {
  const seq = recorded.find((row) => row.name === "head_seq")?.value;
  const hash = recorded.find((row) => row.name === "head_hash")?.value;
  // Every append since the first version of the ledger has written the head with its entries:
  // entries without a head mean the head rows were removed, which hides a removed tail.
  if (seq === undefined && hash === undefined && last === undefined) return;
  if (seq === undefined || hash === undefined) {
    throw new Error(
      `audit.db's entries end at ${last?.seq ?? 0} but its head is missing (ledger_state): it was removed, which would hide entries removed from the end; nothing more is recorded until it is examined (npm run audit -- verify)`,
    );
  }
  if (String(last?.seq ?? 0) === seq && (last?.hash ?? GENESIS_HASH) === hash) return;
  throw new Error(
    `audit.db's entries end at ${last?.seq ?? 0} but its head is entry ${seq} (${hash}): entries were removed or altered; nothing more is recorded until it is examined (npm run audit -- verify)`,
  );
}

export interface Migration {
  requests: number;
  contexts: number;
}

/** Requests copied at a time by the migration: a read must not be open while rows are inserted. */
const MIGRATION_CHUNK = 10_000;

/**
 * Migrates a format-1 ledger (each request row carrying its context) to this format, in one
 * transaction: each distinct context becomes a `contexts` row, each request keeps its number,
 * time, ids and stored hash and names its context. The hash is copied, not recomputed, and
 * `requestColumns` of the migrated row are the format-1 row's columns, so the chain verifies
 * exactly as before — and a row edited before the migration is still caught after it.
 */
export function migrateFromFormat1(sqlite: Sqlite): Migration {
  return sqlite
    .transaction((): Migration => {
      sqlite.exec(`
        DROP TRIGGER IF EXISTS requests_no_update;
        DROP TRIGGER IF EXISTS requests_no_delete;
        ALTER TABLE requests RENAME TO requests_format1;`);
      sqlite.exec(SCHEMA);
      const contexts = new ContextRows(sqlite, new RequestEncoder());
      const insert = rowInserter(sqlite, "requests", STORED_REQUEST_COLUMNS);
      const chunk = sqlite.prepare(
        "SELECT * FROM requests_format1 WHERE seq > ? ORDER BY seq LIMIT ?",
      );
      let requests = 0;
      for (let after = 0; ; ) {
        const rows = chunk.all(after, MIGRATION_CHUNK) as Array<RequestRow & { hash: string }>;
        if (rows.length === 0) break;
        for (const row of rows) {
          insert.add(row.seq, row.at, row.request_id, row.case_id, contexts.seqOf(row), row.hash);
        }
        insert.flush();
        requests += rows.length;
        after = (rows[rows.length - 1] as RequestRow).seq;
      }
      sqlite.exec("DROP TABLE requests_format1");
      sqlite.pragma(`user_version = ${LEDGER_FORMAT}`);
      const count = sqlite.prepare("SELECT count(*) FROM contexts").pluck().get() as number;
      return { requests, contexts: count };
    })
    .immediate();
}

/** Appended to the name of an abandoned journal whose lines broke off before its end. */
export const DAMAGED_SUFFIX = ".damaged";

/**
 * Moves into the ledger what the journals of processes no longer running still hold (a gateway
 * that crashed or was killed: every access it acknowledged is in its journal), then deletes
 * them. Exactly once, also when several gateways move one journal at the same time: how far
 * each journal was moved is read and written in the transaction that inserts its entries.
 * Returns the entries moved, what stopped a scan early (`problems`: the journal is kept as
 * damaged) and which journals could not be moved now (`failures`: a busy `audit.db`, a file
 * moved meanwhile; the next look tries again). `atStart`: see `abandonedJournals`.
 */
export function moveAbandonedJournals(
  sqlite: Sqlite,
  dir: string,
  own: ReadonlySet<string> = new Set(),
  atStart = true,
): { entries: number; problems: string[]; failures: string[] } {
  const append = recordAppender(sqlite);
  let entries = 0;
  const problems: string[] = [];
  const failures: string[] = [];
  for (const name of abandonedJournals(dir, own, atStart)) {
    try {
      entries += moveJournal(sqlite, append, dir, name, problems);
    } catch (error) {
      // SQLITE_BUSY, a file another gateway moved meanwhile: the others are still moved, and
      // this one at the next look.
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  removeOrphanLocks(dir);
  return { entries, problems, failures };
}

/** Moves one abandoned journal (see `moveAbandonedJournals`); returns the entries it added. */
function moveJournal(
  sqlite: Sqlite,
  append: ReturnType<typeof recordAppender>,
  dir: string,
  name: string,
  problems: string[],
): number {
  const path = join(dir, name);
  const key = journalStateKey(name);
  let entries = 0;
  let problem: string | null = null;
  sqlite
    .transaction(() => {
      const scanned = scanJournal(readJournal(path), parsePosition(readState(sqlite, key), name));
      problem = scanned.problem;
      if (scanned.records.length > 0) {
        entries = append(scanned.records, [key, formatPosition(scanned.last)]);
      }
    })
    .immediate();
  // A journal that broke off before its end (an edited line, lines missing) is evidence: kept
  // under a name no ledger reads again, not deleted with the accesses it may still hold. Its
  // lock, which no process holds any more, goes either way.
  removeJournalLock(path);
  if (problem === null) removeFile(path);
  else {
    problems.push(`${name}: ${problem} (kept as ${name}${DAMAGED_SUFFIX})`);
    try {
      renameSync(path, `${path}${DAMAGED_SUFFIX}`);
    } catch (error) {
      // Another gateway found it damaged too and kept it first.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  return entries;
}

export interface RequestRow {
  seq: number;
  at: string;
  request_id: string;
  desk_id: string | null;
  desk_name: string | null;
  purpose: string | null;
  legal_basis: string | null;
  case_id: string | null;
  operation_name: string | null;
  operation_hash: string;
  departments: string;
  /** JSON `[{ fields, denied }]`. */
  selections: string;
}

export interface EntryRow {
  seq: number;
  request: number;
  subject: string;
  selection: number;
  outcome: string;
  prev_hash: string;
  hash: string;
}

function sha256(text: string): string {
  return hash("sha256", text, "hex");
}

/** A request's columns in the order its hash covers them (format 1's table order). */
const REQUEST_COLUMNS = [
  "seq",
  "at",
  "request_id",
  "desk_id",
  "desk_name",
  "purpose",
  "legal_basis",
  "case_id",
  "operation_name",
  "operation_hash",
  "departments",
  "selections",
] as const satisfies readonly (keyof RequestRow)[];

/** A request's columns in the order its hash covers them. */
export function requestColumns(row: RequestRow): unknown[] {
  return REQUEST_COLUMNS.map((column) => row[column]);
}

/**
 * A request's context: the columns that repeat from request to request (the rest differ every
 * time), stored once in `contexts`, in that table's order.
 */
const CONTEXT_COLUMNS = [
  "desk_id",
  "desk_name",
  "purpose",
  "legal_basis",
  "operation_name",
  "operation_hash",
  "departments",
  "selections",
] as const satisfies readonly (keyof RequestRow)[];

type ContextColumns = Pick<RequestRow, (typeof CONTEXT_COLUMNS)[number]>;

const REPEATED_COLUMNS: ReadonlySet<string> = new Set(CONTEXT_COLUMNS);

/**
 * Encodes request rows for `recordAppender` as `requestHash` does — the same text, byte for byte
 * (tested) — without encoding again for every request what consecutive requests share: the
 * selections of a plan (one JSON text per plan, found by the plan's own field arrays), the desk,
 * purpose, operation and departments (their JSON string literals, remembered). Those long
 * columns were most of a small record's cost of hashing.
 */
export class RequestEncoder {
  private readonly fragments = new JsonFragments();

  /** `JSON.stringify(selections)`, once per plan's pair of field arrays. */
  selections(selections: readonly Selection[]): string {
    return this.fragments.selections(selections);
  }

  /** `JSON.stringify(departments)`, remembered. */
  departments(departments: readonly string[]): string {
    return this.fragments.list(departments);
  }

  /** `JSON.stringify` of the context's columns: what its digest is taken of. */
  context(row: ContextColumns): string {
    let text = "[";
    for (const column of CONTEXT_COLUMNS) {
      if (text.length > 1) text += ",";
      text += this.fragments.literal(row[column]);
    }
    return `${text}]`;
  }

  /** `JSON.stringify(requestColumns(row))`. */
  columns(row: RequestRow): string {
    let text = "[";
    for (const column of REQUEST_COLUMNS) {
      if (text.length > 1) text += ",";
      text += REPEATED_COLUMNS.has(column)
        ? this.fragments.literal(row[column] as string | null)
        : JSON.stringify(row[column]);
    }
    return `${text}]`;
  }
}

export function requestHash(row: RequestRow): string {
  return sha256(JSON.stringify(requestColumns(row)));
}

/** A context's digest, as `contexts.digest` holds it. */
export function contextDigest(row: ContextColumns): string {
  return sha256(JSON.stringify(CONTEXT_COLUMNS.map((column) => row[column])));
}

export function entryHash(
  prevHash: string,
  entry: Pick<EntryRow, "seq" | "request" | "subject" | "selection" | "outcome">,
  ofRequest: string,
): string {
  return sha256(
    `${prevHash}\n${entry.seq}\t${entry.request}\t${ofRequest}\t${entry.subject}\t${entry.selection}\t${entry.outcome}`,
  );
}

export function readState(sqlite: Sqlite, name: string): string | null {
  const row = sqlite.prepare("SELECT value FROM ledger_state WHERE name = ?").get(name) as
    | { value: string }
    | undefined;
  return row?.value ?? null;
}

/** One access as `npm run audit -- subject` prints it and `myAccessLog` reads it. */
export interface LedgerEntry {
  entry: number;
  at: string;
  requestId: string;
  subject: string;
  deskId: string | null;
  desk: string | null;
  purpose: string | null;
  legalBasis: string | null;
  caseId: string | null;
  operationName: string | null;
  operationHash: string;
  fields: string[];
  denied: string[];
  departments: string[];
  outcome: string;
  prevHash: string;
  hash: string;
}

const SUBJECT_QUERY = `
SELECT e.seq, e.subject, e.selection, e.outcome, e.prev_hash, e.hash,
       r.at, r.request_id, r.desk_id, r.desk_name, r.purpose, r.legal_basis, r.case_id,
       r.operation_name, r.operation_hash, r.departments, r.selections
FROM (
  SELECT entry AS seq FROM subject_index WHERE subject = :subject
  UNION
  SELECT seq FROM entries
  WHERE seq > coalesce((SELECT CAST(value AS INTEGER) FROM ledger_state WHERE name = 'indexed_upto'), 0)
    AND subject = :subject
) AS found
JOIN entries e ON e.seq = found.seq
JOIN request_details r ON r.seq = e.request
WHERE e.subject = :subject AND e.seq < :before
ORDER BY e.seq DESC
LIMIT :limit`;

type SubjectRow = EntryRow & RequestRow;

/**
 * A subject's entries, newest first, older than entry `before` when given (to read a log longer
 * than `limit` page by page). Each entry's own subject is checked, not only the index's: an index
 * row pointing at another person's entry must not show it.
 */
export function subjectEntries(
  sqlite: Sqlite,
  subject: string,
  limit = 1000,
  before: number = Number.MAX_SAFE_INTEGER,
): LedgerEntry[] {
  const rows = sqlite.prepare(SUBJECT_QUERY).all({ subject, limit, before }) as SubjectRow[];
  return rows.map((row) => {
    const selection = (JSON.parse(row.selections) as Array<{ fields: string[]; denied: string[] }>)[
      row.selection
    ];
    return {
      entry: row.seq,
      at: row.at,
      requestId: row.request_id,
      subject: row.subject,
      deskId: row.desk_id,
      desk: row.desk_name,
      purpose: row.purpose,
      legalBasis: row.legal_basis,
      caseId: row.case_id,
      operationName: row.operation_name,
      operationHash: row.operation_hash,
      fields: selection?.fields ?? [],
      denied: selection?.denied ?? [],
      departments: JSON.parse(row.departments) as string[],
      outcome: row.outcome,
      prevHash: row.prev_hash,
      hash: row.hash,
    };
  });
}

/**
 * Indexes up to `max` not-yet-indexed entries in one sorted bulk insert; returns how many.
 * Sorted by subject, the inserts walk the index B-tree once instead of jumping at random.
 */
export function indexSubjects(sqlite: Sqlite, max: number): number {
  return sqlite.transaction(() => {
    const from = Number(readState(sqlite, "indexed_upto") ?? 0);
    const to = from + max;
    const last = sqlite
      .prepare("SELECT max(seq) AS seq FROM entries WHERE seq > ? AND seq <= ?")
      .get(from, to) as { seq: number | null };
    if (last.seq === null) return 0;
    sqlite
      .prepare(
        "INSERT OR IGNORE INTO subject_index (subject, entry) SELECT subject, seq FROM entries WHERE seq > ? AND seq <= ? ORDER BY subject, seq",
      )
      .run(from, last.seq);
    sqlite
      .prepare(`INSERT INTO ledger_state (name, value) VALUES ('indexed_upto', ?) ${SET_STATE}`)
      .run(String(last.seq));
    return last.seq - from;
  })();
}

export type ChainVerdict =
  | { ok: true; entries: number; head: { seq: number; hash: string } | null }
  | { ok: false; entries: number; brokenAt: number; reason: string };

/** Walks the whole chain in order and names the first entry that does not hold. */
export function verifyChain(sqlite: Sqlite): ChainVerdict {
  const contexts = new Map<number, ContextColumns>();
  const badContexts = new Set<number>();
  const contextRows = sqlite.prepare("SELECT * FROM contexts ORDER BY seq").iterate() as Iterable<
    ContextColumns & { seq: number; digest: string }
  >;
  for (const row of contextRows) {
    contexts.set(row.seq, row);
    if (contextDigest(row) !== row.digest) badContexts.add(row.seq);
  }
  // One request at a time: an entry's request is read when it differs from the previous entry's
  // (entries of a request are consecutive), so memory does not grow with the ledger: a hash per
  // request kept for the walk made `npm run audit -- verify` of a million requests peak at
  // 535 MB, against 184 MB this way (and 19 against 17 s).
  const requestRow = sqlite.prepare(
    "SELECT seq, at, request_id, case_id, context, hash FROM requests WHERE seq = ?",
  );
  type RequestCheck = { seq: number; hash: string; problem: string | null } | null;
  const checkRequest = (seq: number): RequestCheck => {
    const row = requestRow.get(seq) as
      | (Pick<RequestRow, "seq" | "at" | "request_id" | "case_id"> & {
          context: number;
          hash: string;
        })
      | undefined;
    if (!row) return null;
    const context = contexts.get(row.context);
    if (!context) return { seq, hash: row.hash, problem: `its context ${row.context} is missing` };
    const computed = requestHash({ ...context, ...row });
    const problem = badContexts.has(row.context)
      ? `its context ${row.context} was edited`
      : computed !== row.hash
        ? "its content does not match its hash"
        : null;
    return { seq, hash: computed, problem };
  };
  let request: RequestCheck = null;
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let count = 0;
  const broken = (seq: number, reason: string): ChainVerdict => ({
    ok: false,
    entries: count,
    brokenAt: seq,
    reason,
  });
  const entries = sqlite
    .prepare("SELECT * FROM entries ORDER BY seq")
    .iterate() as Iterable<EntryRow>;
  for (const entry of entries) {
    if (entry.seq !== expectedSeq) {
      return broken(
        entry.seq,
        `entry ${entry.seq} follows entry ${expectedSeq - 1}: entries ${expectedSeq}…${entry.seq - 1} were deleted`,
      );
    }
    if (entry.prev_hash !== prev) {
      return broken(
        entry.seq,
        `entry ${entry.seq} does not carry the hash of entry ${entry.seq - 1}`,
      );
    }
    if (request?.seq !== entry.request) request = checkRequest(entry.request);
    if (request === null) {
      return broken(
        entry.seq,
        `entry ${entry.seq} refers to request ${entry.request}, which is missing`,
      );
    }
    if (request.problem) {
      return broken(
        entry.seq,
        `entry ${entry.seq}: its request ${entry.request} was edited (${request.problem})`,
      );
    }
    if (entryHash(prev, entry, request.hash) !== entry.hash) {
      return broken(
        entry.seq,
        `entry ${entry.seq} was edited: its content does not match its hash`,
      );
    }
    prev = entry.hash;
    expectedSeq++;
    count++;
  }
  const headSeq = readState(sqlite, "head_seq");
  const headHash = readState(sqlite, "head_hash");
  if ((headSeq === null || headHash === null) && count > 0) {
    // Written with the entries by every append since the ledger's first version.
    return broken(
      count + 1,
      `the ledger ends at entry ${count} but records no head (ledger_state): the head was removed, so a truncated tail cannot be told`,
    );
  }
  if (
    headSeq !== null &&
    (Number(headSeq) !== count || headHash !== (count ? prev : GENESIS_HASH))
  ) {
    return broken(
      count + 1,
      `the ledger ends at entry ${count} but its head records entry ${headSeq}: the tail was truncated or the head edited`,
    );
  }
  return { ok: true, entries: count, head: count ? { seq: count, hash: prev } : null };
}
