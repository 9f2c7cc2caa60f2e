/**
 * The audit ledger's journal: where a request's accesses become durable before its response is
 * sent, without SQLite on the gateway's event loop. The writer thread moves them into `audit.db`
 * (chained there with every other entry) a few times a second, off the request's path.
 *
 * Why a journal: committing to `audit.db` on the event loop cost a request ≈ 24 µs of the loop
 * (SQLite's transaction, a dozen `pwrite`s and lock calls per commit) and, handed to a thread
 * instead, more in waiting for that thread. A journal costs the loop one JSON line and one
 * SHA-256 per record, and one `pwrite` and one `fdatasync` per group of records (see
 * docs/performance.md, "The audit journal").
 *
 * One file per gateway process, `DATA_DIR/audit-<pid>@<namespace>-<random>.journal`, of lines
 *
 *     <seq> TAB <hash> TAB <JSON> LF
 *
 * where the JSON is a record, or a context that records name (what the requests of one desk,
 * purpose and plan share: see `RecordEncoder`), seq counts from 1 and hash = sha256(<previous
 * line's hash> LF <JSON>), the first line's previous hash being the file's name: the journal is a hash chain of its own, so that a
 * record is tamper-evident from the moment it is acknowledged, not only once it is in `audit.db`.
 * The writer records how far it has moved a journal (`ledger_state`, `journal:<file>` = "<seq>
 * <hash>") in the transaction that inserts the entries, so a line is moved exactly once — also
 * after a crash: the next gateway to open the ledger, a running gateway's writer within a few
 * seconds, or `npm run audit`, moves what the journal of a process that is no longer running
 * still holds, then deletes the file. Whether its process runs is told by the lock it holds on
 * `audit-….alive` beside the journal (`ProcessLock`: the kernel lets go of it when the process
 * ends, in any PID namespace, and not while it is paused); for a journal without one (a gateway
 * of an earlier version), by its number in the PID namespace that named the file, and by the
 * file's age elsewhere (a gateway touches its journal every second). A gateway whose lines
 * another moved meanwhile stops rather than move them twice.
 *
 * The file is preallocated (zeros written and flushed once) so that a flush writes data only: a
 * file that grows makes every `fdatasync` commit the filesystem's own journal as well. Once every
 * line written has been moved and the file is past its preallocated size, writing starts again
 * at its beginning; a scan stops where the sequence or the chain breaks (a line of an earlier
 * round, a line torn by a crash, zeros).
 */
import { hash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { removeFile, syncPath } from "../../common/files.ts";
import { isProcessRunning, ProcessLock } from "../../common/processes.ts";
import { JsonFragments, type Selection, type WireRecord } from "./wire.ts";

/** Preallocated size: writing starts over past it once everything written has been moved. */
export const JOURNAL_BYTES = 8 << 20;
/**
 * Past this the ledger refuses new records: the writer thread has not moved anything for a long
 * time, and a journal must not grow without bound. Under V8's longest string (≈ 512 MiB), since a
 * journal is read back as text: a larger one could not be read, and a gateway starting after a
 * crash could not move it.
 */
export const MAX_JOURNAL_BYTES = 256 << 20;

/**
 * `audit-<pid>@<namespace>-<random>.journal`; `audit-<pid>-<random>.journal` from gateways before
 * the namespace was named (judged as this namespace's, and only when a gateway starts).
 */
const NAME = /^audit-(\d+)(?:@([a-z0-9-]{1,63}))?-[0-9a-f]{12}\.journal$/;

/**
 * Where this process's number names this process: its PID namespace since this boot (a container
 * has its own, in which a gateway is often process 1), else the host name. A journal named by
 * another namespace cannot be judged by its number here.
 */
export const NAMESPACE = processNamespace();

function processNamespace(): string {
  try {
    const inode = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1];
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").replaceAll("-", "");
    if (inode && /^[0-9a-f]{8}/.test(boot)) return `${boot.slice(0, 8)}-${inode}`;
  } catch {
    // not Linux, or /proc hidden: the host name stands for the namespace
  }
  return (
    hostname()
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .slice(0, 63) || "host"
  );
}

/** The lock file telling whether a journal's process runs (`ProcessLock`), beside the journal. */
export function journalLockPath(journalPath: string): string {
  return journalPath.replace(/\.journal$/, ".alive");
}

/** Removes an abandoned journal's lock file, which no process holds any more. */
export function removeJournalLock(journalPath: string): void {
  removeFile(journalLockPath(journalPath));
}

/**
 * Removes lock files that guard no journal and that no process holds: left by a process that
 * ended between taking its lock and creating its journal, or between removing its journal and
 * letting go. (One held without a journal is a gateway starting: left alone.)
 */
export function removeOrphanLocks(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const present = new Set(names);
  for (const name of names) {
    if (!name.startsWith("audit-") || !name.endsWith(".alive")) continue;
    if (present.has(name.replace(/\.alive$/, ".journal"))) continue;
    const path = join(dir, name);
    if (ProcessLock.held(path) === false) removeFile(path);
  }
}

/**
 * A journal of another namespace is abandoned once it has not been touched for this long: a
 * running gateway touches its journal every `TOUCH_MS` (`keepTouching`).
 */
export const STALE_JOURNAL_MS = 60_000;
/** A running gateway takes another namespace's journal when two looks this far apart find it stale. */
export const SECOND_LOOK_MS = 3_000;
/** Journals of other namespaces found stale, with their time then and when (`performance.now`). */
const staleLooks = new Map<string, { mtimeMs: number; seenAt: number }>();
export const TOUCH_MS = 1_000;

/**
 * How far the journal is written and moved, shared by the event loop and the writer thread
 * (`Int32Array` over a `SharedArrayBuffer`, read and written with `Atomics`): no message, and no
 * wake-up of the other thread, per record.
 */
export const Progress = {
  /** Bytes of the current round that are durable (a line boundary). */
  DurableEnd: 0,
  /** Rounds: times writing has started over at the file's beginning. */
  Round: 1,
  /** Bytes of the round `MovedRound` that the writer has moved into `audit.db`. */
  MovedEnd: 2,
  MovedRound: 3,
} as const;

export function journalProgress(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT));
}

/** Where a journal's lines end: an offset in one round of the file. */
export interface JournalEnd {
  round: number;
  end: number;
}

/** The last line moved (or read): its number and hash. */
export interface JournalPosition {
  seq: number;
  hash: string;
}

/** Where a journal file starts: before its first line. */
export function journalStart(name: string): JournalPosition {
  return { seq: 0, hash: name };
}

/** The `ledger_state` key recording how far a journal has been moved. */
export function journalStateKey(name: string): string {
  return `journal:${name}`;
}

export function formatPosition(position: JournalPosition): string {
  return `${position.seq} ${position.hash}`;
}

export function parsePosition(value: string | null, name: string): JournalPosition {
  if (value === null) return journalStart(name);
  const [seq, at] = value.split(" ");
  return { seq: Number(seq), hash: at ?? "" };
}

function lineHash(previous: string, json: string): string {
  return hash("sha256", `${previous}\n${json}`, "hex");
}

/** Subjects are upper-case letters and digits, outcomes letters: nothing in them needs escaping. */
const PLAIN = /^[0-9A-Z\n]*$/;

/** Characters of a context's SHA-256 (hex) that name it: 128 bits, no collision to be found. */
const CONTEXT_ID_LENGTH = 32;

function contextId(json: string): string {
  return hash("sha256", json, "hex").slice(0, CONTEXT_ID_LENGTH);
}

/** What the requests of one desk, purpose and plan have in common: written once per journal round. */
export type RecordContext = Pick<
  WireRecord,
  | "deskId"
  | "deskName"
  | "purpose"
  | "legalBasis"
  | "operationName"
  | "operationHash"
  | "departments"
  | "selections"
>;

/**
 * Records as journal lines carry them, the text built from remembered fragments. What repeats
 * from request to request (desk, purpose, operation, the plan's selections: most of a small
 * record's text) is a context line `{"context":{…}}`, written once per round of the journal; a
 * record line `{"at":…,"requestId":…,"context":"<id>",…}` names it by the first 32 hex digits of
 * its SHA-256. A line is then a third of the text to hash, write, read back and parse.
 */
export class RecordEncoder {
  private readonly fragments = new JsonFragments();
  /** The last context encoded, and its text. */
  private last: { context: RecordContext; text: string } | null = null;

  /**
   * `JSON.stringify` of the record's context, fields in `RecordContext`'s order. A record of the
   * same context as the one before (one desk's load) gets the same string object back: the
   * journal looks contexts up by their text, and a string built anew (≈ 1 KB) would be
   * flattened and hashed again for each record.
   */
  context(record: WireRecord): string {
    const last = this.last;
    if (last && sameContext(last.context, record)) return last.text;
    const text = this.encode(record);
    this.last = { context: record, text };
    return text;
  }

  private encode(record: RecordContext): string {
    const f = this.fragments;
    return `{"deskId":${f.literal(record.deskId)},"deskName":${f.literal(record.deskName)},"purpose":${f.literal(record.purpose)},"legalBasis":${f.literal(record.legalBasis)},"operationName":${f.literal(record.operationName)},"operationHash":${f.literal(record.operationHash)},"departments":${f.list(record.departments)},"selections":${f.selections(record.selections)}}`;
  }

  /** The record's own fields as JSON, its context named by `context`. */
  record(record: WireRecord, context: string): string {
    const subjects = PLAIN.test(record.subjects)
      ? `"${record.subjects.replaceAll("\n", "\\n")}"`
      : JSON.stringify(record.subjects);
    return `{"at":${JSON.stringify(record.at)},"requestId":${JSON.stringify(record.requestId)},"context":"${context}","caseId":${JSON.stringify(record.caseId)},"subjects":${subjects},"picks":[${record.picks.join(",")}],"outcomes":${JSON.stringify(record.outcomes)}}`;
  }
}

/**
 * Whether two records share their context. Compared value by value: the plan's field lists are
 * the same arrays from request to request, the departments a new array of the same strings.
 */
function sameContext(a: RecordContext, b: RecordContext): boolean {
  if (
    a.deskId !== b.deskId ||
    a.deskName !== b.deskName ||
    a.purpose !== b.purpose ||
    a.legalBasis !== b.legalBasis ||
    a.operationName !== b.operationName ||
    a.operationHash !== b.operationHash ||
    a.selections.length !== b.selections.length ||
    !sameList(a.departments, b.departments)
  ) {
    return false;
  }
  for (let i = 0; i < a.selections.length; i++) {
    const x = a.selections[i] as Selection;
    const y = b.selections[i] as Selection;
    if (!sameList(x.fields, y.fields) || !sameList(x.denied, y.denied)) return false;
  }
  return true;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Selections read back, one object per distinct value: the records of one plan then share their
 * arrays, as they did when written, and audit.db's encoder finds their JSON remembered instead of
 * writing it again for every record.
 */
const readSelections = new Map<string, readonly Selection[]>();

function shared(selections: readonly Selection[]): readonly Selection[] {
  let key = "";
  for (const { fields, denied } of selections) {
    key += `${fields.join("\u0001")}\u0002${denied.join("\u0001")}\u0003`;
  }
  const known = readSelections.get(key);
  if (known) return known;
  if (readSelections.size >= 1_000) readSelections.clear();
  readSelections.set(key, selections);
  return selections;
}

const CONTEXT_PREFIX = '{"context":{';

/** Contexts read back, by id: kept by a reader from one read to the next within a round. */
export type JournalContexts = Map<string, RecordContext>;

/** A context line's context and id, or null when the line is a record. */
function decodeContext(json: string): { id: string; context: RecordContext } | null {
  if (!json.startsWith(CONTEXT_PREFIX)) return null;
  const text = json.slice(CONTEXT_PREFIX.length - 1, -1);
  const context = JSON.parse(text) as RecordContext;
  return { id: contextId(text), context: { ...context, selections: shared(context.selections) } };
}

type RecordLine = Omit<WireRecord, "picks" | keyof RecordContext> & {
  picks: number[];
  /** Absent in the lines of journals written before contexts (whole records). */
  context?: string;
} & Partial<RecordContext>;

function decodeRecord(json: string, contexts: JournalContexts): WireRecord | string {
  const line = JSON.parse(json) as RecordLine;
  let context: RecordContext;
  if (line.context === undefined) {
    context = line as RecordContext;
  } else {
    const known = contexts.get(line.context);
    if (!known) return `its context ${line.context} is not in the journal`;
    context = known;
  }
  return {
    at: line.at,
    requestId: line.requestId,
    deskId: context.deskId,
    deskName: context.deskName,
    purpose: context.purpose,
    legalBasis: context.legalBasis,
    caseId: line.caseId,
    operationName: context.operationName,
    operationHash: context.operationHash,
    departments: context.departments,
    selections: line.context === undefined ? shared(context.selections) : context.selections,
    subjects: line.subjects,
    picks: Uint16Array.from(line.picks),
    outcomes: line.outcomes,
  };
}

/** The lines of a journal after `from`, verified, and where and why a scan stopped early. */
export interface ScannedJournal {
  records: WireRecord[];
  /** The last line read (`from` when none). */
  last: JournalPosition;
  /** Characters of the text up to the end of the last line read. */
  end: number;
  /** Why the scan stopped before the end of the text, if it did at a line that is not a tail. */
  problem: string | null;
}

/**
 * Reads journal lines from `text` (a whole round of a file, or the bytes written since the last
 * read, with the contexts that earlier reads of the round found): lines numbered up to
 * `from.seq` are skipped (moved already) but for the contexts they define, the next must carry
 * `from`'s hash, and the scan stops at the first line that does not continue the sequence and
 * the chain — a torn last line, zeros, a line of an earlier round, or an edited line (reported
 * in `problem`). A context is trusted by its id, the hash of its text, which the chain covers.
 */
export function scanJournal(
  text: string,
  from: JournalPosition,
  contexts: JournalContexts = new Map(),
): ScannedJournal {
  const records: WireRecord[] = [];
  let last = from;
  let end = 0;
  let previousSeq: number | null = null;
  let offset = 0;
  const stop = (problem: string | null): ScannedJournal => ({ records, last, end, problem });
  while (offset < text.length) {
    const newline = text.indexOf("\n", offset);
    if (newline < 0) return stop(null); // a line torn by a crash: never acknowledged
    const line = text.slice(offset, newline);
    const lineEnd = newline + 1;
    offset = lineEnd;
    const firstTab = line.indexOf("\t");
    const secondTab = line.indexOf("\t", firstTab + 1);
    const seq = Number(line.slice(0, firstTab));
    if (firstTab < 1 || secondTab < 0 || !Number.isSafeInteger(seq) || seq < 1) return stop(null);
    if (previousSeq !== null && seq !== previousSeq + 1) return stop(null); // an earlier round
    previousSeq = seq;
    const lineHashText = line.slice(firstTab + 1, secondTab);
    const json = line.slice(secondTab + 1);
    if (seq <= from.seq) {
      if (seq === from.seq && lineHashText !== from.hash) {
        return stop(`line ${seq} differs from the line moved into audit.db`);
      }
      try {
        const defined = decodeContext(json);
        if (defined) contexts.set(defined.id, defined.context);
      } catch {
        return stop(`line ${seq} is not a context`);
      }
      end = lineEnd;
      continue;
    }
    if (seq !== last.seq + 1) {
      return stop(`lines ${last.seq + 1}…${seq - 1} are missing`);
    }
    if (lineHash(last.hash, json) !== lineHashText) {
      return stop(`line ${seq} does not match its hash (edited, or torn by a crash)`);
    }
    try {
      const defined = decodeContext(json);
      if (defined) {
        contexts.set(defined.id, defined.context);
      } else {
        const record = decodeRecord(json, contexts);
        if (typeof record === "string") return stop(`line ${seq}: ${record}`);
        records.push(record);
      }
    } catch {
      return stop(`line ${seq} is not a record`);
    }
    last = { seq, hash: lineHashText };
    end = lineEnd;
  }
  return stop(null);
}

/**
 * Journal files of `dir` whose process is not running (their lines are moved, then deleted).
 * `atStart`: a journal of this very process that it does not hold open (`own`) was left by a
 * ledger that failed; later, another ledger of this process may have opened it since.
 */
export function abandonedJournals(
  dir: string,
  own: ReadonlySet<string> = new Set(),
  atStart = true,
  now = Date.now(),
  seenAt = performance.now(),
): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((name) => {
    const match = NAME.exec(name);
    if (!match || own.has(name)) return false;
    // Its lock tells, wherever and however its process runs: held, it runs (paused, perhaps);
    // free, it has ended. One look is enough either way, at start or not.
    const held = ProcessLock.held(journalLockPath(join(dir, name)));
    if (held !== null) {
      staleLooks.delete(name);
      return !held;
    }
    // No lock file: a gateway of an earlier version.
    const pid = Number(match[1]);
    const namespace = match[2];
    if (namespace === undefined && !atStart) return false; // a gateway of an earlier version
    if (namespace !== undefined && namespace !== NAMESPACE) {
      // Another container's process number means nothing here: its gateway is gone when it has
      // stopped touching the file.
      let mtimeMs: number;
      try {
        mtimeMs = statSync(join(dir, name)).mtimeMs;
      } catch {
        return false; // moved meanwhile by another gateway
      }
      if (now - mtimeMs <= STALE_JOURNAL_MS) {
        staleLooks.delete(name);
        return false;
      }
      if (atStart) return true;
      // A running gateway: stale at two looks, seconds apart on this process's own clock. After
      // the host was suspended, a first look can come before the journal's gateway, resumed too,
      // has touched it again.
      const earlier = staleLooks.get(name);
      if (earlier?.mtimeMs === mtimeMs && seenAt - earlier.seenAt >= SECOND_LOOK_MS) {
        staleLooks.delete(name);
        return true;
      }
      if (earlier?.mtimeMs !== mtimeMs) staleLooks.set(name, { mtimeMs, seenAt });
      return false;
    }
    if (pid === process.pid) return atStart;
    // A running process of that number may be another program that reused it after a reboot:
    // the journal then waits until that process has ended; its records are late, not lost.
    return !isProcessRunning(pid);
  });
}

/**
 * Touches a journal every `TOUCH_MS` from the event loop — not from the writer thread, which a
 * migration or a long move can keep busy — so that gateways of other namespaces see its gateway
 * runs. Calls `gone` if the file has been removed (another gateway judged this one stopped).
 */
export function keepTouching(path: string, gone: (error: Error) => void): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(path, now, now);
    } catch (error) {
      // Only a removed file means another gateway took it; a volume that refuses explicit
      // times (EPERM on some network shares) leaves the journal's own writes to touch it.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") gone(error as Error);
    }
  }, TOUCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Reads a whole journal file as text (empty when it is gone). */
export function readJournal(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw error;
  }
}

/**
 * The event loop's side: appends groups of records and flushes them. Not thread-safe: one writer.
 */
export class JournalWriter {
  private position = 0;
  private round = 0;
  private last: JournalPosition;
  private readonly encoder = new RecordEncoder();
  /** Contexts defined in this round of the file: context JSON → id. */
  private readonly contexts = new Map<string, string>();

  private constructor(
    readonly path: string,
    readonly name: string,
    private readonly fd: number,
    private readonly progress: Int32Array,
    private readonly preallocated: number,
    private readonly lock: ProcessLock,
  ) {
    this.last = journalStart(name);
  }

  /** Creates this process's journal in `dir`, preallocated and on disk (directory entry too). */
  static create(dir: string, progress: Int32Array, bytes = JOURNAL_BYTES): JournalWriter {
    const random = hash("sha256", `${process.pid} ${Date.now()} ${Math.random()}`, "hex");
    const name = `audit-${process.pid}@${NAMESPACE}-${random.slice(0, 12)}.journal`;
    const path = join(dir, name);
    // The lock first: a journal others can see always has its lock held while its process runs.
    const lock = ProcessLock.hold(journalLockPath(path));
    let fd: number | null = null;
    try {
      fd = openSync(path, "wx+");
      const zeros = Buffer.alloc(Math.min(bytes, 1 << 20));
      for (let at = 0; at < bytes; at += zeros.length) {
        writeSync(fd, zeros, 0, Math.min(zeros.length, bytes - at), at);
      }
      fsyncSync(fd);
      syncPath(dir);
    } catch (error) {
      if (fd !== null) closeSync(fd);
      removeFile(path);
      lock.release();
      throw error;
    }
    return new JournalWriter(path, name, fd, progress, bytes, lock);
  }

  /**
   * Writes the records as lines after the last one (one `pwrite`); returns where they end, to
   * be passed to `markDurable` once a flush covering it has finished. Throws when it cannot write.
   */
  append(records: readonly WireRecord[]): JournalEnd {
    if (this.position >= this.preallocated && this.allMoved()) {
      // Everything written is in audit.db: start over at the beginning of the file.
      this.position = 0;
      this.round++;
      this.contexts.clear(); // the new round writes over the lines that defined them
      Atomics.store(this.progress, Progress.DurableEnd, 0);
      Atomics.store(this.progress, Progress.Round, this.round);
    }
    let text = "";
    let last = this.last;
    const line = (json: string): void => {
      const seq = last.seq + 1;
      const lineHashText = lineHash(last.hash, json);
      text += `${seq}\t${lineHashText}\t${json}\n`;
      last = { seq, hash: lineHashText };
    };
    let defined: Map<string, string> | null = null;
    for (const record of records) {
      const context = this.encoder.context(record);
      let id = this.contexts.get(context) ?? defined?.get(context);
      if (id === undefined) {
        id = contextId(context);
        line(`{"context":${context}}`);
        defined ??= new Map();
        defined.set(context, id);
      }
      line(this.encoder.record(record, id));
    }
    const bytes = Buffer.from(text, "utf8");
    if (this.position + bytes.length > MAX_JOURNAL_BYTES) {
      throw new Error(
        `the audit journal holds ${this.position} bytes not moved into audit.db: the ledger writer is not keeping up`,
      );
    }
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(
        this.fd,
        bytes,
        written,
        bytes.length - written,
        this.position + written,
      );
    }
    this.position += bytes.length;
    this.last = last;
    if (defined) {
      // A few desks, purposes and plans: the bound only guards memory (a context forgotten is
      // written again).
      if (this.contexts.size + defined.size > 10_000) this.contexts.clear();
      for (const [context, id] of defined) this.contexts.set(context, id);
    }
    return this.end();
  }

  /** The end of what has been written, in its round. */
  private end(): JournalEnd {
    return { round: this.round, end: this.position };
  }

  private allMoved(): boolean {
    return (
      Atomics.load(this.progress, Progress.MovedRound) === this.round &&
      Atomics.load(this.progress, Progress.MovedEnd) === this.position
    );
  }

  /** Makes every line written so far durable, on this thread. */
  flushSync(): JournalEnd {
    fdatasyncSync(this.fd);
    return this.end();
  }

  /** Makes every line written so far durable, in libuv's thread pool. */
  flush(done: (error: Error | null, end: JournalEnd) => void): void {
    const end = this.end();
    fdatasync(this.fd, (error) => done(error, end));
  }

  /**
   * Lets the writer thread move the lines up to `end`. Flushes in the thread pool can finish out
   * of order: one that finishes after writing has started over covered the previous round only,
   * and marking its end in the new round would hand the writer lines not yet flushed (or not
   * yet written: it would then stop the ledger as unreadable).
   */
  markDurable({ round, end }: JournalEnd): void {
    if (round === this.round && end > Atomics.load(this.progress, Progress.DurableEnd)) {
      Atomics.store(this.progress, Progress.DurableEnd, end);
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  /**
   * Lets go of the journal's lock, once the writer is done with it: its file goes with the
   * journal; a journal left behind (not all moved) keeps it, free, so that the next gateway to
   * look knows at once that its process is done with it.
   */
  releaseLock(): void {
    this.lock.release(existsSync(this.path));
  }
}

/**
 * The writer thread's side: reads what the event loop made durable since the last read (the
 * round and the end from `progress`), and reports what it has moved.
 */
export class JournalReader {
  private readonly fd: number;
  private offset = 0;
  private round = 0;
  private buffer = Buffer.alloc(1 << 20);
  /** Contexts defined by the lines of this round read so far. */
  readonly contexts: JournalContexts = new Map();

  constructor(
    path: string,
    private readonly progress: Int32Array,
    /** The last line moved into audit.db. */
    public position: JournalPosition,
  ) {
    this.fd = openSync(path, "r");
  }

  /** Lines made durable and not yet read, with the offset to report once they are moved. */
  read(): { text: string; round: number; end: number } {
    let round: number;
    let end: number;
    // The event loop starts a new round (end back to 0) only once everything is moved: read the
    // round on both sides of the end so that the pair belongs to one round.
    do {
      round = Atomics.load(this.progress, Progress.Round);
      end = Atomics.load(this.progress, Progress.DurableEnd);
    } while (round !== Atomics.load(this.progress, Progress.Round));
    if (round !== this.round) {
      this.round = round;
      this.offset = 0;
      this.contexts.clear();
    }
    if (end <= this.offset) return { text: "", round, end: this.offset };
    const length = end - this.offset;
    if (this.buffer.length < length) this.buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const got = readSync(this.fd, this.buffer, read, length - read, this.offset + read);
      if (got === 0) break;
      read += got;
    }
    // Durable ends fall on line boundaries, so the bytes read decode whole.
    return { text: this.buffer.toString("utf8", 0, read), round, end: this.offset + read };
  }

  /** Records that the lines read up to `end` (and `position`) are in audit.db. */
  moved(round: number, end: number, position: JournalPosition): void {
    this.offset = end;
    this.position = position;
    Atomics.store(this.progress, Progress.MovedEnd, end);
    Atomics.store(this.progress, Progress.MovedRound, round);
  }

  close(): void {
    closeSync(this.fd);
  }
}
