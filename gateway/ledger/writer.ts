/**
 * The ledger writer, a worker thread. It owns the ledger's housekeeping and its large writes, so
 * that none of them runs on the gateway's event loop:
 *
 * - records too large to hash and insert on the event loop (a batch of 1,000 subjects, a
 *   verification round), written with `synchronous = FULL` and acknowledged after the commit;
 *   records arriving while a commit is in progress are written together in the next transaction
 *   (group commit: one fsync per batch, not per request);
 * - records the gateway could not commit itself because this thread held the write lock;
 * - checkpoints of the write-ahead log (the gateway's own connection never checkpoints);
 * - the subject index, built in bulk when the ledger is quiet;
 * - reads of a subject's entries.
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  indexSubjects,
  openAuditDatabase,
  readState,
  recordAppender,
  subjectEntries,
} from "./store.ts";
import type { AppendMessage, LedgerRequest, WireRecord, WriterMessage } from "./wire.ts";

const { dir, sync } = workerData as { dir: string; sync: "full" | "normal" };
const port = parentPort;
if (!port) throw new Error("the ledger writer runs as a worker thread");

const sqlite = openAuditDatabase(dir, { sync });
const appendRecords = recordAppender(sqlite);

/** Entries past which the index is built even under load, so that queries stay quick. */
const INDEX_BACKLOG = 500_000;
/** Entries indexed at a time: a write arriving meanwhile waits for one chunk at most. */
const INDEX_CHUNK = 5_000;
/** How often the writer looks after the file: checkpoint, index when quiet. */
const TICK_MS = 1_000;

let queue: WireRecord[] = [];
let scheduled = false;
/** SQLite's count of commits by other connections: unchanged over a tick means quiet. */
let lastVersion = -1;
/** This thread wrote since the last tick. */
let wrote = false;

function post(message: WriterMessage): void {
  port?.postMessage(message);
}

function flush(): void {
  scheduled = false;
  if (queue.length === 0) return;
  const batch = queue;
  queue = [];
  const upTo = batch[batch.length - 1]?.id ?? 0;
  wrote = true;
  try {
    appendRecords(batch);
    post({ type: "committed", upTo });
  } catch (error) {
    post({ type: "failed", upTo, message: (error as Error).message });
  }
}

function backlog(): number {
  return (
    Number(readState(sqlite, "head_seq") ?? 0) - Number(readState(sqlite, "indexed_upto") ?? 0)
  );
}

/**
 * Every tick: copy the write-ahead log into the database (PASSIVE: it never blocks a writer),
 * and index what was written, in chunks, if nobody wrote since the last tick (or the backlog
 * is too long to leave).
 */
function tick(): void {
  try {
    sqlite.pragma("wal_checkpoint(PASSIVE)");
    const version = sqlite.pragma("data_version", { simple: true }) as number;
    const quiet = version === lastVersion && !wrote && queue.length === 0;
    lastVersion = version;
    wrote = false;
    if (quiet || backlog() >= INDEX_BACKLOG) indexSubjects(sqlite, INDEX_CHUNK);
    // Quiet with more to index: go on at once, a chunk at a time so that writes interleave.
    if (quiet && backlog() > 0) {
      timer = setTimeout(tick, 0);
      return;
    }
  } catch {
    // SQLITE_BUSY while another process writes: the next tick tries again.
  }
  timer = setTimeout(tick, TICK_MS);
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
    clearTimeout(timer);
    sqlite.pragma("wal_checkpoint(TRUNCATE)");
    sqlite.close();
    post({ type: "closed" });
    port.close();
  }
});

let timer = setTimeout(tick, TICK_MS);
post({ type: "ready" });
