/**
 * The ledger writer, a worker thread: it owns the write connection of `audit.db`, so the hashing,
 * the inserts and above all the fsync of each commit happen off the gateway's event loop.
 *
 * Group commit: records arriving while a commit is in progress (or in the same turn of the event
 * loop) are written together in the next transaction, so a busy gateway pays one fsync per batch,
 * not per request. Each record is acknowledged only after the transaction holding it committed;
 * the gateway sends a response only after that acknowledgement.
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  entryHash,
  GENESIS_HASH,
  indexSubjects,
  openAuditDatabase,
  type RequestRow,
  requestColumns,
  requestHash,
  subjectEntries,
} from "./store.ts";
import {
  type AppendMessage,
  type LedgerRequest,
  OUTCOME_OF_LETTER,
  type WireRecord,
  type WriterMessage,
} from "./wire.ts";

const { dir, sync } = workerData as { dir: string; sync: "full" | "normal" };
const port = parentPort;
if (!port) throw new Error("the ledger writer runs as a worker thread");

const sqlite = openAuditDatabase(dir, { sync });
const insertRequest = sqlite.prepare(
  `INSERT INTO requests (seq, at, request_id, desk_id, desk_name, purpose, legal_basis, case_id,
     operation_name, operation_hash, departments, selections, hash)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const ENTRY_COLUMNS = 7;
/** Entries per INSERT statement: one statement per 64 rows costs far less than 64 statements. */
const ROWS_PER_INSERT = 64;
const insertEntries = (rows: number) =>
  sqlite.prepare(
    `INSERT INTO entries (seq, request, subject, selection, outcome, prev_hash, hash) VALUES ${Array(
      rows,
    )
      .fill("(?, ?, ?, ?, ?, ?, ?)")
      .join(", ")}`,
  );
/** One statement per row count, prepared when first needed: any batch is at most two statements. */
const inserts = new Map<number, ReturnType<typeof insertEntries>>();
function insertRows(values: unknown[]): void {
  const rows = values.length / ENTRY_COLUMNS;
  let statement = inserts.get(rows);
  if (!statement) {
    statement = insertEntries(rows);
    inserts.set(rows, statement);
  }
  statement.run(values);
}
const lastEntry = sqlite.prepare("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1");
const lastRequest = sqlite.prepare("SELECT max(seq) AS seq FROM requests");
const setHead = sqlite.prepare(
  "INSERT OR REPLACE INTO ledger_state (name, value) VALUES ('head_seq', ?), ('head_hash', ?)",
);

/** Entries past which the index is built even under load, so that queries stay quick. */
const INDEX_BACKLOG = 500_000;
/** Entries indexed at a time: an append arriving meanwhile waits for one chunk at most. */
const INDEX_CHUNK = 5_000;
/** Quiet time after which the writer indexes what it wrote. */
const IDLE_MS = 1_000;

let queue: WireRecord[] = [];
let scheduled = false;
let idleTimer: NodeJS.Timeout | null = null;
let unindexed = 0;

const appendAll = sqlite.transaction((records: WireRecord[]) => {
  // Read the head inside the write transaction: another gateway process may share the file.
  const head = lastEntry.get() as { seq: number; hash: string } | undefined;
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? GENESIS_HASH;
  let requestSeq = (lastRequest.get() as { seq: number | null }).seq ?? 0;
  let written = 0;
  const pending: unknown[] = [];
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
      departments: JSON.stringify(record.departments),
      selections: JSON.stringify(record.selections),
    };
    const ofRequest = requestHash(row);
    insertRequest.run(...requestColumns(row), ofRequest);
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
      pending.push(
        entry.seq,
        entry.request,
        entry.subject,
        entry.selection,
        entry.outcome,
        prev,
        hash,
      );
      if (pending.length === ROWS_PER_INSERT * ENTRY_COLUMNS) {
        insertRows(pending);
        pending.length = 0;
      }
      prev = hash;
    }
    written += subjects.length;
  }
  if (pending.length > 0) insertRows(pending);
  setHead.run(String(seq), prev);
  return written;
});

function post(message: WriterMessage): void {
  port?.postMessage(message);
}

function flush(): void {
  scheduled = false;
  if (queue.length === 0) return;
  const batch = queue;
  queue = [];
  const upTo = batch[batch.length - 1]?.id ?? 0;
  try {
    unindexed += appendAll(batch);
    post({ type: "committed", upTo });
  } catch (error) {
    post({ type: "failed", upTo, message: (error as Error).message });
  }
  if (unindexed >= INDEX_BACKLOG) indexChunk();
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(indexWhileIdle, IDLE_MS);
}

function indexChunk(): number {
  const indexed = indexSubjects(sqlite, INDEX_CHUNK);
  unindexed = Math.max(0, unindexed - indexed);
  return indexed;
}

function indexWhileIdle(): void {
  idleTimer = null;
  if (queue.length > 0) return;
  if (indexChunk() > 0) idleTimer = setTimeout(indexWhileIdle, 0);
}

function answer(request: LedgerRequest): void {
  try {
    const entries = subjectEntries(sqlite, request.subject, request.limit);
    post({ type: "entries", id: request.id, entries });
  } catch (error) {
    post({ type: "entries", id: request.id, entries: [], error: (error as Error).message });
  }
}

port.on("message", (message: AppendMessage | LedgerRequest | { type: "close" }) => {
  if (message.type === "append") {
    for (const record of message.records) queue.push(record);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  } else if (message.type === "entries") {
    flush(); // a reader sees every access acknowledged before it asked
    answer(message);
  } else if (message.type === "close") {
    flush();
    if (idleTimer) clearTimeout(idleTimer);
    sqlite.pragma("wal_checkpoint(TRUNCATE)");
    sqlite.close();
    post({ type: "closed" });
    port.close();
  }
});

// Index what an earlier run left unindexed, once things are quiet.
idleTimer = setTimeout(indexWhileIdle, IDLE_MS);
post({ type: "ready" });
