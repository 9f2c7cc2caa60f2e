/**
 * The audit ledger as the gateway uses it: `append` a request's accesses and wait until they are
 * durable, `entriesFor` a subject.
 *
 * Guarantee: `append` resolves only once the record is on disk in this process's journal (see
 * `journal.ts`) — with `AUDIT_SYNC=full` (the default) after an `fdatasync`, so an acknowledged
 * access survives a process crash and a power loss; with `AUDIT_SYNC=normal`, once written, so it
 * survives a process crash but not a power loss. The gateway sends a response only after
 * `append` resolved, so no data leaves without its access on disk. If the ledger cannot write,
 * the request fails and nothing is disclosed. The writer thread (`writer.ts`) moves the journal
 * into `audit.db` within `MOVE_MS`, and before it answers any read; after a crash, the next start
 * moves what the journal still holds.
 *
 * How records are written: those appended while the microtasks of one event run are gathered
 * — a department's batch answer completes a wave of some twenty requests in one event — and
 * written as one group as soon as those microtasks have run: one `pwrite` of their journal
 * lines, then one `fdatasync`. The flush runs on the event loop while flushes are quick (a
 * fraction of a millisecond): waiting for libuv's thread pool to flush, and then for the event
 * loop to notice, took a loaded gateway 1–2 ms, during which the requests waited. A flush
 * slower than `SLOW_FLUSH_MS` sends the next second's flushes to the thread pool, so that a slow
 * disk does not stall the event loop.
 */
import { Worker } from "node:worker_threads";
import type { LedgerObserver } from "../metrics.ts";
import type { Principal } from "../principal.ts";
import {
  JOURNAL_BYTES,
  type JournalEnd,
  JournalWriter,
  journalProgress,
  keepTouching,
} from "./journal.ts";
import type { LedgerEntry, Migration } from "./store.ts";
import {
  OUTCOME_LETTERS,
  type Selection,
  type SubjectAccess,
  type WireRecord,
  type WriterMessage,
} from "./wire.ts";

export type { LedgerEntry } from "./store.ts";
export type { AccessOutcome, SubjectAccess } from "./wire.ts";

/** The accesses of one request (or one verification) to append. */
export interface AccessRecord {
  principal: Principal;
  requestId: string;
  operationName: string | null;
  /** sha256 of the operation document as the desk sent it. */
  operationHash: string;
  /** Departments that answered. */
  departments: Iterable<string>;
  subjects: readonly SubjectAccess[];
  at?: Date;
}

export interface AccessLedger {
  /** Resolves once the record is durable; rejects when it could not be written. */
  append(record: AccessRecord): Promise<void>;
  /** A subject's entries, newest first (older than entry `before`, when given). */
  entriesFor(subject: string, limit?: number, before?: number): Promise<LedgerEntry[]>;
  /** Resolves once every access acknowledged so far is in `audit.db` (not only in the journal). */
  moved(): Promise<void>;
  readonly available: boolean;
  close(): Promise<void>;
}

export class LedgerUnavailable extends Error {}

/** Subjects are identity numbers or credit codes: upper-case letters and digits only. */
const SUBJECT = /^[0-9A-Z]{1,32}$/;

type CompactSubjects = Pick<WireRecord, "selections" | "subjects" | "picks" | "outcomes">;

function checkedSubject(access: SubjectAccess): string {
  if (!SUBJECT.test(access.subject)) {
    throw new LedgerUnavailable(`not a subject identifier: ${JSON.stringify(access.subject)}`);
  }
  return access.subject;
}

/** An interactive request's one subject: its selections and picks need no lookup. */
const ONLY_FIRST = Uint16Array.of(0);

/** The compact form of a record's subjects: distinct selections, and per subject an index. */
function compact(subjects: readonly SubjectAccess[]): CompactSubjects {
  if (subjects.length === 1) {
    const access = subjects[0] as SubjectAccess;
    return {
      selections: [{ fields: access.fields, denied: access.denied }],
      subjects: checkedSubject(access),
      // Read only (encoded into the journal line), so one array serves every such record.
      picks: ONLY_FIRST,
      outcomes: OUTCOME_LETTERS[access.outcome],
    };
  }
  const selections: Selection[] = [];
  const indexOf = new Map<readonly string[], Map<readonly string[], number>>();
  const picks = new Uint16Array(subjects.length);
  const names: string[] = new Array(subjects.length);
  let outcomes = "";
  subjects.forEach((access, position) => {
    names[position] = checkedSubject(access);
    let byDenied = indexOf.get(access.fields);
    if (!byDenied) {
      byDenied = new Map();
      indexOf.set(access.fields, byDenied);
    }
    let index = byDenied.get(access.denied);
    if (index === undefined) {
      index = selections.length;
      selections.push({ fields: access.fields, denied: access.denied });
      byDenied.set(access.denied, index);
    }
    picks[position] = index;
    outcomes += OUTCOME_LETTERS[access.outcome];
  });
  return { selections, subjects: names.join("\n"), picks, outcomes };
}

/**
 * The time of a record: the ISO text of the current millisecond, formatted once per millisecond
 * (a wave of twenty records completes within one).
 */
let stampMs = -1;
let stampText = "";
function now(): string {
  const ms = Date.now();
  if (ms !== stampMs) {
    stampMs = ms;
    stampText = new Date(ms).toISOString();
  }
  return stampText;
}

/**
 * The departments that answered, sorted. The previous record's array when it names the same
 * ones (most requests of one operation ask the same departments): no copy and sort, and the
 * journal's encoder finds its context unchanged at the first comparison.
 */
let lastDepartments: readonly string[] = [];
function sortedDepartments(departments: Iterable<string>): readonly string[] {
  if (departments instanceof Set && departments.size === lastDepartments.length) {
    let same = true;
    for (const department of lastDepartments) {
      if (!departments.has(department)) {
        same = false;
        break;
      }
    }
    if (same) return lastDepartments;
  }
  lastDepartments = [...departments].sort();
  return lastDepartments;
}

/** With security off (development, benchmarks): nothing is recorded. */
export const NO_LEDGER: AccessLedger = {
  append: async () => {},
  entriesFor: async () => [],
  moved: async () => {},
  available: true,
  close: async () => {},
};

/** A record waiting to be durable, and its caller. */
interface Pending {
  record: WireRecord;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Flushes on the event loop averaging longer than this send the flushes of the next period to
 * the thread pool. An average, not each flush: one flush in a hundred takes a few milliseconds
 * (the writer thread's own commit on the same disk), and going to the pool for each of those
 * measured as if the loop never flushed at all.
 */
const SLOW_FLUSH_MS = 2;
const FLUSH_AVERAGE_WEIGHT = 0.1;
const POOL_PERIOD_MS = 1_000;

/**
 * Flushes in the thread pool under way at once (libuv's pool has four threads); each covers every
 * group written before it started.
 */
const MAX_FLUSHES = 3;

export interface LedgerOptions {
  /** Preallocated journal size (tests use a small one to exercise its starting over). */
  journalBytes?: number;
  /** How often the writer looks for journals of gateways that stopped (default 5 s). */
  abandonedEveryMs?: number;
  /** How long the writer waits for audit.db's lock held by another process (default 5 s). */
  busyTimeoutMs?: number;
}

/** Journals held open by ledgers of this process (another ledger on the same directory skips them). */
const openJournals = new Set<string>();
/**
 * Ledgers of this process open one at a time. A starting writer takes a journal of this process
 * that no open ledger holds for one a failed ledger left, moves it and deletes it: a journal
 * created by a second ledger opening meanwhile would be taken for one.
 */
let opening: Promise<unknown> = Promise.resolve();

export class AuditLedger implements AccessLedger {
  private nextId = 1;
  private readonly requests = new Map<number, (message: WriterMessage) => void>();
  private failure: Error | null = null;
  /** Records of the event being gathered. */
  private gathering: Pending[] = [];
  private gatherScheduled = false;
  /** Written to the journal, waiting for a flush in the thread pool. */
  private unsynced: Pending[] = [];
  /** Flushes in the thread pool under way. */
  private syncing = 0;
  /** Until then (performance.now()), flushes go to the thread pool: those on the loop were slow. */
  private poolUntil = 0;
  /** Moving average of a flush on the event loop, ms. */
  private flushMs = 0;
  private closed: Promise<void> | null = null;
  /** The writer thread has ended (after a close, or on its own). */
  private writerExited = false;

  private constructor(
    private readonly worker: Worker,
    private readonly journal: JournalWriter,
    private readonly sync: "full" | "normal",
    /**
     * What opening did: moved what the journals of gateways no longer running held, migrated a
     * format-1 file.
     */
    readonly recovered: { entries: number; problems: string[]; migrated: Migration | null },
    private readonly stopTouching: () => void,
  ) {
    worker.on("message", (message: WriterMessage) => this.receive(message));
    worker.on("error", (error) =>
      this.fail(new LedgerUnavailable(`ledger writer failed: ${error.message}`)),
    );
    worker.on("exit", () => {
      this.writerExited = true;
      this.fail(new LedgerUnavailable("the ledger writer stopped"));
    });
  }

  /**
   * Creates this process's journal in `dir`, starts the writer over `dir/audit.db` (which first
   * moves what the journals of stopped gateways hold) and waits until it is ready.
   */
  static open(
    dir: string,
    sync: "full" | "normal",
    options: LedgerOptions = {},
  ): Promise<AuditLedger> {
    const opened = opening.then(() => AuditLedger.start(dir, sync, options));
    opening = opened.catch(() => {});
    return opened;
  }

  private static async start(
    dir: string,
    sync: "full" | "normal",
    options: LedgerOptions,
  ): Promise<AuditLedger> {
    const progress = journalProgress();
    let journal: JournalWriter;
    try {
      journal = JournalWriter.create(dir, progress, options.journalBytes ?? JOURNAL_BYTES);
    } catch (error) {
      throw new Error(
        `the audit journal could not be created in ${dir}: ${(error as Error).message}`,
      );
    }
    openJournals.add(journal.name);
    let ledger: AuditLedger | null = null;
    const stopTouching = keepTouching(journal.path, (error) =>
      ledger?.fail(
        new LedgerUnavailable(
          `the audit journal ${journal.name} is gone (${error.message}): another gateway judged this one stopped and moved it`,
        ),
      ),
    );
    const worker = new Worker(new URL("./worker.mjs", import.meta.url), {
      workerData: {
        module: new URL("./writer.ts", import.meta.url).href,
        dir,
        sync,
        journal: { path: journal.path, name: journal.name },
        progress: progress.buffer,
        own: [...openJournals],
        abandonedEveryMs: options.abandonedEveryMs ?? 5_000,
        busyTimeoutMs: options.busyTimeoutMs ?? 5_000,
      },
      // Its messages are a few strings per read: a young generation of V8's default size would
      // only add to the gateway's footprint.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    let recovered: AuditLedger["recovered"] = { entries: 0, problems: [], migrated: null };
    try {
      await new Promise<void>((resolve, reject) => {
        const failed = (error: unknown) =>
          reject(
            new Error(
              `the audit ledger ${dir}/audit.db could not be opened: ${(error as Error)?.message || JSON.stringify(error)}`,
            ),
          );
        worker.once("message", (message: WriterMessage) => {
          if (message.type !== "ready") return;
          worker.off("error", failed);
          recovered = {
            entries: message.recovered,
            problems: message.problems,
            migrated: message.migrated,
          };
          resolve();
        });
        worker.once("error", failed);
        worker.once("exit", (code) => failed(new Error(`the ledger writer exited (${code})`)));
      });
    } catch (error) {
      stopTouching();
      openJournals.delete(journal.name);
      journal.close();
      journal.releaseLock();
      throw error;
    }
    // Acknowledged records are on disk already; the writer must not keep a process alive that
    // failed to start or forgot to close the gateway.
    worker.unref();
    ledger = new AuditLedger(worker, journal, sync, recovered, stopTouching);
    return ledger;
  }

  get available(): boolean {
    return this.failure === null && this.closed === null;
  }

  append(record: AccessRecord): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new LedgerUnavailable("the ledger is closed"));
    const { principal } = record;
    let subjects: ReturnType<typeof compact>;
    try {
      subjects = compact(record.subjects);
    } catch (error) {
      return Promise.reject(error);
    }
    const wire: WireRecord = {
      at: record.at ? record.at.toISOString() : now(),
      requestId: record.requestId,
      deskId: principal.deskId,
      deskName: principal.deskName,
      purpose: principal.purpose,
      legalBasis: principal.legalBasis,
      caseId: principal.caseId,
      operationName: record.operationName,
      operationHash: record.operationHash,
      departments: sortedDepartments(record.departments),
      selections: subjects.selections,
      subjects: subjects.subjects,
      picks: subjects.picks,
      outcomes: subjects.outcomes,
    };
    return new Promise<void>((resolve, reject) => {
      this.gathering.push({ record: wire, resolve, reject });
      if (!this.gatherScheduled) {
        this.gatherScheduled = true;
        // A tick queued from a promise's continuation runs once the microtask queue is empty:
        // after every request this event completed has appended its record, and before the
        // event loop goes on to the next event. Waiting for the end of the loop's turn instead
        // (`setImmediate`, then three turns) made the same groups (≈ 20 records) but held the
        // wave's answers while the rest of the turn's events ran: 5–7 % of the interactive
        // throughput (docs/performance.md, "Twenty pairs of three seconds, and gathering a
        // wave").
        process.nextTick(() => this.write());
      }
    });
  }

  /** Writes the gathered records to the journal as one group, then has them flushed. */
  private write(): void {
    this.gatherScheduled = false;
    const group = this.gathering;
    this.gathering = [];
    if (group.length === 0) return;
    if (this.failure) {
      for (const pending of group) pending.reject(this.failure);
      return;
    }
    let end: JournalEnd;
    try {
      end = this.journal.append(group.map((pending) => pending.record));
    } catch (error) {
      this.failGroup(group, `the access could not be recorded: ${(error as Error).message}`);
      return;
    }
    if (this.sync === "normal") {
      this.journal.markDurable(end);
      for (const pending of group) pending.resolve();
      this.observer?.durable(group.length, 0, "none");
      return;
    }
    if (this.syncing === 0 && performance.now() >= this.poolUntil) {
      const started = performance.now();
      try {
        this.journal.flushSync();
      } catch (error) {
        this.failGroup(
          group,
          `the audit journal could not be flushed: ${(error as Error).message}`,
        );
        return;
      }
      const finished = performance.now();
      this.flushMs += (finished - started - this.flushMs) * FLUSH_AVERAGE_WEIGHT;
      if (this.flushMs > SLOW_FLUSH_MS) {
        // The disk has become slow: stop stalling the loop on it for a while, then try again.
        this.poolUntil = finished + POOL_PERIOD_MS;
        this.flushMs = 0;
      }
      this.journal.markDurable(end);
      for (const pending of group) pending.resolve();
      // Told after the records are settled: nothing it does can keep them waiting.
      this.observer?.durable(group.length, (finished - started) / 1000, "loop");
      return;
    }
    for (const pending of group) this.unsynced.push(pending);
    this.flushInPool();
  }

  private flushInPool(): void {
    if (this.syncing >= MAX_FLUSHES || this.unsynced.length === 0) return;
    const covered = this.unsynced;
    this.unsynced = [];
    this.syncing++;
    const started = performance.now();
    this.journal.flush((error, end) => {
      this.syncing--;
      if (error) {
        this.failGroup(covered, `the audit journal could not be flushed: ${error.message}`);
        return;
      }
      const seconds = (performance.now() - started) / 1000;
      this.journal.markDurable(end);
      for (const pending of covered) pending.resolve();
      this.flushInPool();
      this.observer?.durable(covered.length, seconds, "pool");
    });
  }

  /** Whether anything reached the disk is unknown: nothing more can be promised. */
  private failGroup(group: readonly Pending[], message: string): void {
    const failure = new LedgerUnavailable(message);
    for (const pending of group) pending.reject(failure);
    this.fail(failure);
  }

  entriesFor(subject: string, limit = 1000, before?: number): Promise<LedgerEntry[]> {
    return this.ask({ type: "entries", subject, limit, before }).then((message) => {
      if (message.type !== "entries") return [];
      if (message.error) throw new LedgerUnavailable(message.error);
      return message.entries;
    });
  }

  moved(): Promise<void> {
    return this.ask({ type: "moved" }).then((message) => {
      if (message.type === "moved" && message.error) throw new LedgerUnavailable(message.error);
    });
  }

  /**
   * How many entries audit.db holds, and how many of them the subject index does not hold yet
   * (a citizen's log reads those by scanning: it is built when the ledger is quiet, or at once
   * past 500,000 behind). For the metrics.
   */
  status(): Promise<{ entries: number; unindexed: number }> {
    return this.ask({ type: "status" }).then((message) => {
      if (message.type !== "status")
        throw new LedgerUnavailable("the ledger's writer answered out of turn");
      if (message.error) throw new LedgerUnavailable(message.error);
      return { entries: message.entries, unindexed: message.unindexed };
    });
  }

  private ask(
    request:
      | { type: "entries"; subject: string; limit: number; before?: number | undefined }
      | { type: "moved" }
      | { type: "status" },
  ) {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<WriterMessage>((resolve, reject) => {
      this.requests.set(id, (message) =>
        message.type === "failed"
          ? reject(new LedgerUnavailable(message.message))
          : resolve(message),
      );
      this.worker.postMessage({ ...request, id });
    });
  }

  private receive(message: WriterMessage): void {
    if (message.type === "entries" || message.type === "moved" || message.type === "status") {
      const answer = this.requests.get(message.id);
      this.requests.delete(message.id);
      answer?.(message);
    } else if (message.type === "failed") {
      this.fail(new LedgerUnavailable(message.message));
    } else if (message.type === "recovered") {
      this.onRecovered?.({ entries: message.entries, problems: message.problems });
    }
  }

  /** Told when the writer moved the journals of gateways that stopped while this one ran. */
  onRecovered: ((moved: { entries: number; problems: string[] }) => void) | null = null;

  /** Told of each group of records made durable (the gateway's metrics), when set. */
  observer: LedgerObserver | null = null;

  /**
   * Stops acknowledging: every record not yet durable, and every read, fails. Also while closing,
   * so that a flush failing then settles its waiting records and lets `close` finish; the writer's
   * exit after a completed close finds nothing waiting and changes nothing.
   */
  private fail(error: Error): void {
    if (this.failure) return;
    if (this.closed && this.syncing === 0 && this.unsynced.length === 0) return;
    this.failure = error;
    for (const pending of [...this.gathering, ...this.unsynced]) pending.reject(error);
    this.gathering = [];
    this.unsynced = [];
    for (const answer of this.requests.values()) answer({ type: "failed", message: error.message });
    this.requests.clear();
  }

  /** Writes what is gathered, waits until it is durable, then stops the writer. */
  close(): Promise<void> {
    if (!this.closed) {
      this.write();
      // The journal's lock last: until the writer has moved and removed the journal, another
      // gateway must not judge it abandoned.
      this.closed = this.journalFlushed()
        .then(() => this.stopWriter())
        .finally(() => this.journal.releaseLock());
    }
    return this.closed;
  }

  private async journalFlushed(): Promise<void> {
    // Flushes under way in the thread pool finish before the file is closed, failure or not: a
    // descriptor closed under them could be reused by another file, and a flush of that file
    // would then acknowledge records that were never flushed.
    while (this.syncing > 0 || (this.unsynced.length > 0 && !this.failure)) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    this.stopTouching();
    this.journal.close();
    openJournals.delete(this.journal.name);
  }

  private stopWriter(): Promise<void> {
    return new Promise<void>((resolve) => {
      // Its exit may have come while the journal was being flushed: no "closed" would follow.
      if (this.writerExited) {
        resolve();
        return;
      }
      // Failed or not, the writer is asked to move what it still can and close (a journal another
      // gateway took still holds what this one acknowledged before it heard so); one that does
      // not answer within 5 s is stopped.
      if (this.failure) {
        setTimeout(() => void this.worker.terminate(), 5_000).unref();
      }
      this.worker.ref(); // keep the process alive until the writer has moved everything and closed
      this.worker.on("message", (message: WriterMessage) => {
        if (message.type === "closed") resolve();
      });
      this.worker.once("exit", () => resolve());
      this.worker.postMessage({ type: "close" });
    });
  }
}
