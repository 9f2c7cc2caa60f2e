/**
 * The ledger writer, a worker thread. It owns `audit.db`, so that no statement on it runs on the
 * gateway's event loop:
 *
 * - at start, and every few seconds after, moves what the journals of gateways no longer running
 *   still hold (other gateways may share the directory and crash while this one runs);
 * - every `MOVE_MS`, moves what the event loop has made durable in its journal into `audit.db`,
 *   in one transaction (the entries chained after the head, how far the journal is moved in
 *   `ledger_state`), and tells the event loop through the shared progress, so that the journal
 *   can start over at its beginning;
 * - checkpoints the write-ahead log, and builds the subject index in bulk when the ledger is quiet;
 * - answers reads of a subject's entries, after moving everything acknowledged before the read.
 */
import { parentPort, workerData } from "node:worker_threads";
import { removeFile } from "../../common/files.ts";
import {
  formatPosition,
  JournalReader,
  journalStart,
  journalStateKey,
  parsePosition,
  scanJournal,
} from "./journal.ts";
import type { Migration } from "./store.ts";
import {
  indexSubjects,
  JournalTaken,
  moveAbandonedJournals,
  openAuditDatabase,
  readState,
  recordAppender,
  subjectEntries,
} from "./store.ts";
import type { LedgerRequest, WriterMessage } from "./wire.ts";

const { dir, sync, journal, progress, own, abandonedEveryMs, busyTimeoutMs } = workerData as {
  dir: string;
  sync: "full" | "normal";
  /** This process's journal: its path and file name. */
  journal: { path: string; name: string };
  progress: SharedArrayBuffer;
  /** Journals this process holds open (other ledgers on the same directory): not abandoned. */
  own: string[];
  /** How often to look for journals of gateways that stopped (a directory listing). */
  abandonedEveryMs: number;
  /** How long a move waits for audit.db's lock held by another process. */
  busyTimeoutMs: number;
};
const port = parentPort;
if (!port) throw new Error("the ledger writer runs as a worker thread");

let migrated: Migration | null = null;
const sqlite = openAuditDatabase(dir, {
  sync,
  busyTimeoutMs,
  migrated: (report) => (migrated = report),
});
const appendRecords = recordAppender(sqlite);
const recovered = moveAbandonedJournals(sqlite, dir, new Set(own));
if (recovered.failures.length > 0) {
  throw new Error(
    `a stopped gateway's journal could not be moved: ${recovered.failures.join("; ")}`,
  );
}
const journalKey = journalStateKey(journal.name);
const reader = new JournalReader(
  journal.path,
  new Int32Array(progress),
  parsePosition(readState(sqlite, journalKey), journal.name),
);

/** How often durable journal lines are moved into audit.db. */
const MOVE_MS = 100;
/** Entries past which the index is built even under load, so that queries stay quick. */
const INDEX_BACKLOG = 500_000;
/** Entries indexed at a time: a write arriving meanwhile waits for one chunk at most. */
const INDEX_CHUNK = 5_000;
/** How often the writer looks after the file: checkpoint, index when quiet. */
const TICK_MS = 1_000;
let lookedForAbandoned = Date.now();

/**
 * Moves the journals of gateways that stopped while this one ran, and tells the event loop
 * what it moved (it logs it). Journals of this process are left alone: another ledger of this
 * process may have opened them.
 */
function moveAbandoned(): void {
  lookedForAbandoned = Date.now();
  const moved = moveAbandonedJournals(sqlite, dir, new Set([journal.name]), false);
  if (moved.entries > 0 || moved.problems.length > 0) {
    wrote = true;
    post({ type: "recovered", entries: moved.entries, problems: moved.problems });
  }
}

/** SQLite's count of commits by other connections: unchanged over a tick means quiet. */
let lastVersion = -1;
/** This thread wrote since the last tick. */
let wrote = false;
/** Why the journal cannot be moved at all (it does not read back as written), once it is known. */
let unreadable: string | null = null;

function post(message: WriterMessage): void {
  port?.postMessage(message);
}

/**
 * Moves the journal lines made durable since the last move into audit.db. A failure (the file
 * locked for longer than the busy timeout, a full disk) leaves them in the journal for the next
 * attempt; a journal that does not read back as written stops the ledger. Returns why the lines
 * are not moved, or null once everything durable so far is in audit.db.
 */
function move(): string | null {
  if (unreadable) return unreadable;
  const { text, round, end } = reader.read();
  if (text === "") return null;
  const scanned = scanJournal(text, reader.position, reader.contexts);
  if (scanned.problem || scanned.end !== text.length) {
    unreadable = `the audit journal ${journal.name} does not read back as written: ${scanned.problem ?? "a line is incomplete"}`;
    post({ type: "failed", message: unreadable });
    return unreadable;
  }
  try {
    // Where this writer left the journal: another gateway that judged this one stopped (paused
    // for a minute, say) and moved its lines must not have them moved twice.
    const left = reader.position.seq === 0 ? null : formatPosition(reader.position);
    appendRecords(scanned.records, [journalKey, formatPosition(scanned.last), left]);
  } catch (error) {
    if (error instanceof JournalTaken) return taken(error, text, round, end);
    // SQLITE_BUSY (another process writes) or a transient error: the next move retries
    return `audit.db could not be written: ${(error as Error).message}`;
  }
  wrote = true;
  reader.moved(round, end, scanned.last);
  return null;
}

/** Told to the event loop once: this journal was taken by another gateway. */
let takenReported = false;

/**
 * Another gateway moved this journal's lines (it judged this one stopped) and deleted the file.
 * The event loop is told to stop acknowledging, and until it has, and until the ledger closes,
 * what it acknowledged after the lines the other gateway moved is moved here, skipping those.
 */
function taken(error: JournalTaken, text: string, round: number, end: number): string | null {
  if (!takenReported) {
    takenReported = true;
    post({
      type: "failed",
      message: `the audit journal ${journal.name} was moved by another gateway, which judged this one stopped: ${error.message}`,
    });
  }
  const theirs =
    error.current === null
      ? journalStart(journal.name)
      : parsePosition(error.current, journal.name);
  const rest = scanJournal(text, theirs, reader.contexts);
  try {
    if (rest.records.length > 0) {
      appendRecords(rest.records, [journalKey, formatPosition(rest.last), error.current]);
    }
  } catch (again) {
    return `audit.db could not be written: ${(again as Error).message}`;
  }
  wrote = true;
  reader.moved(round, end, rest.records.length > 0 ? rest.last : theirs);
  return null;
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
    if (Date.now() - lookedForAbandoned >= abandonedEveryMs) moveAbandoned();
  } catch {
    // SQLITE_BUSY while another process writes, a journal moved meanwhile: the next look
  }
  try {
    sqlite.pragma("wal_checkpoint(PASSIVE)");
    const version = sqlite.pragma("data_version", { simple: true }) as number;
    const quiet = version === lastVersion && !wrote;
    lastVersion = version;
    wrote = false;
    if (quiet || backlog() >= INDEX_BACKLOG) indexSubjects(sqlite, INDEX_CHUNK);
    // Quiet with more to index: go on at once, a chunk at a time so that moves interleave.
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
  // A reader sees every access acknowledged before it asked, or an error: not a partial log.
  const unmoved = move();
  if (unmoved) {
    post({ type: "entries", id: request.id, entries: [], error: unmoved });
    return;
  }
  try {
    // …and what a gateway sharing the directory acknowledged before it stopped (when it can:
    // a busy audit.db leaves that to the next tick, not the read failing).
    moveAbandoned();
  } catch {
    // moved by a later tick
  }
  try {
    const entries = subjectEntries(sqlite, request.subject, request.limit, request.before);
    post({ type: "entries", id: request.id, entries });
  } catch (error) {
    post({ type: "entries", id: request.id, entries: [], error: (error as Error).message });
  }
}

function status(id: number): void {
  try {
    const entries = Number(readState(sqlite, "head_seq") ?? 0);
    post({ type: "status", id, entries, unindexed: backlog() });
  } catch (error) {
    post({ type: "status", id, entries: 0, unindexed: 0, error: (error as Error).message });
  }
}

port.on(
  "message",
  (message: LedgerRequest | { type: "moved" | "status"; id: number } | { type: "close" }) => {
    if (message.type === "entries") {
      answer(message);
    } else if (message.type === "status") {
      status(message.id);
    } else if (message.type === "moved") {
      const unmoved = move();
      post(
        unmoved
          ? { type: "moved", id: message.id, error: unmoved }
          : { type: "moved", id: message.id },
      );
    } else if (message.type === "close") {
      move();
      clearInterval(mover);
      clearTimeout(timer);
      // Everything the event loop wrote is durable by now (it flushes before closing): once it is
      // all in audit.db the journal has nothing left to recover.
      const { text } = reader.read();
      reader.close();
      if (!unreadable && text === "") removeFile(journal.path);
      sqlite.pragma("wal_checkpoint(TRUNCATE)");
      sqlite.close();
      post({ type: "closed" });
      port.close();
    }
  },
);

const mover = setInterval(move, MOVE_MS);
let timer = setTimeout(tick, TICK_MS);
post({ type: "ready", recovered: recovered.entries, problems: recovered.problems, migrated });
