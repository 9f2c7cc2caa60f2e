/**
 * The audit ledger as the gateway uses it: `append` a request's accesses and wait until they are
 * durable, `entriesFor` a subject.
 *
 * Guarantee: `append` resolves only after the transaction holding the record has committed —
 * with `AUDIT_SYNC=full` (the default) after the write-ahead log holding it reached the disk, so
 * an acknowledged access survives a process crash and a power loss; with `AUDIT_SYNC=normal`, a
 * process crash but not a power loss. The gateway sends a response only after `append` resolved,
 * so no data leaves without its access on disk. If the ledger cannot write, the request fails
 * and nothing is disclosed.
 *
 * Where records are written: a request about a few subjects (the interactive case) is committed
 * on the event loop at the end of its turn, together with the others of that turn, and the log
 * is flushed by `fdatasync` in libuv's thread pool — no hand-over to another JavaScript thread
 * on the request's path, which on a loaded machine costs more in waiting for that thread to be
 * scheduled than the commit itself. Large records (a 1,000-subject batch, a verification round)
 * and housekeeping go to the writer thread (`writer.ts`).
 */
import { closeSync, fdatasync, openSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { Principal } from "../principal.ts";
import {
  auditWalPath,
  type LedgerEntry,
  openAuditDatabase,
  recordAppender,
  type Sqlite,
} from "./store.ts";
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
  /** A subject's entries, newest first. */
  entriesFor(subject: string, limit?: number): Promise<LedgerEntry[]>;
  readonly available: boolean;
  close(): Promise<void>;
}

export class LedgerUnavailable extends Error {}

/** Subjects are identity numbers or credit codes: upper-case letters and digits only. */
const SUBJECT = /^[0-9A-Z]{1,32}$/;

/** The compact form of a record's subjects: distinct selections, and per subject an index. */
function compact(
  subjects: readonly SubjectAccess[],
): Pick<WireRecord, "selections" | "subjects" | "picks" | "outcomes"> {
  const selections: Selection[] = [];
  const indexOf = new Map<readonly string[], Map<readonly string[], number>>();
  const picks = new Uint16Array(subjects.length);
  const names: string[] = new Array(subjects.length);
  let outcomes = "";
  subjects.forEach((access, position) => {
    if (!SUBJECT.test(access.subject)) {
      throw new LedgerUnavailable(`not a subject identifier: ${JSON.stringify(access.subject)}`);
    }
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
    names[position] = access.subject;
    outcomes += OUTCOME_LETTERS[access.outcome];
  });
  return { selections, subjects: names.join("\n"), picks, outcomes };
}

/** With security off (development, benchmarks): nothing is recorded. */
export const NO_LEDGER: AccessLedger = {
  append: async () => {},
  entriesFor: async () => [],
  available: true,
  close: async () => {},
};

interface Waiting {
  id: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A record the gateway writes itself, with the caller waiting for it. */
interface Local {
  record: WireRecord;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Records with fewer subjects than this are written on the event loop (a request about one
 * person costs ~20 µs there, less than handing it to a thread); larger ones go to the writer.
 */
const LOCAL_SUBJECTS = 64;

/**
 * Flushes of the log under way at once (libuv's pool has four threads). A flush covers the
 * commits made before it started; with one at a time, a commit made while one is under way
 * waits for it and then for its own, and each wait includes this thread finding time for the
 * completion. Measured (security on, interactive): one flush at a time 0.62–0.66 of security
 * off's throughput, three 0.71–0.73.
 */
const MAX_FLUSHES = 3;

export class AuditLedger implements AccessLedger {
  private nextId = 1;
  private waiting: Waiting[] = [];
  private readonly reading = new Map<number, (message: WriterMessage) => void>();
  private failure: Error | null = null;
  /**
   * Records for the writer thread not yet handed over. One batch is in flight at a time: records
   * arriving while the writer commits wait here and go together, one message per commit.
   */
  private outbox: WireRecord[] = [];
  private inFlight = false;
  /** Small records of this turn of the event loop, committed together at its end. */
  private local: Local[] = [];
  private localScheduled = false;
  /** Committed on this thread, waiting for the write-ahead log to reach the disk. */
  private unsynced: Local[] = [];
  /** Flushes of the log under way. */
  private syncing = 0;
  private closed: Promise<void> | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly sqlite: Sqlite,
    private readonly appendRecords: (records: readonly WireRecord[]) => number,
    /** The write-ahead log, flushed to disk by `fdatasync` (null with AUDIT_SYNC=normal). */
    private readonly wal: number | null,
  ) {
    worker.on("message", (message: WriterMessage) => this.receive(message));
    worker.on("error", (error) =>
      this.fail(new LedgerUnavailable(`ledger writer failed: ${error.message}`)),
    );
    worker.on("exit", () => this.fail(new LedgerUnavailable("the ledger writer stopped")));
  }

  /**
   * Starts the writer over `dir/audit.db`, waits until it has opened the file, and opens the
   * gateway's own connection.
   */
  static async open(dir: string, sync: "full" | "normal"): Promise<AuditLedger> {
    const worker = new Worker(new URL("./worker.mjs", import.meta.url), {
      workerData: { module: new URL("./writer.ts", import.meta.url).href, dir, sync },
      // Its messages are a few strings per record: a young generation of V8's default size
      // (32 MB once a batch scenario has grown it) would only add to the gateway's footprint.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
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
        resolve();
      });
      worker.once("error", failed);
      worker.once("exit", (code) => failed(new Error(`the ledger writer exited (${code})`)));
    });
    // Acknowledged records are on disk already; the writer must not keep a process alive that
    // failed to start or forgot to close the gateway.
    worker.unref();
    // The writer created the file and its write-ahead log (WAL mode keeps the log while any
    // connection is open, and this one stays open as long as the ledger).
    const sqlite = openAuditDatabase(dir, { existing: true, sync: "normal", eventLoop: true });
    const wal = sync === "full" ? openSync(auditWalPath(dir), "r+") : null;
    return new AuditLedger(worker, sqlite, recordAppender(sqlite), wal);
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
    const id = this.nextId++;
    const message: WireRecord = {
      id,
      at: (record.at ?? new Date()).toISOString(),
      requestId: record.requestId,
      deskId: principal.deskId,
      deskName: principal.deskName,
      purpose: principal.purpose,
      legalBasis: principal.legalBasis,
      caseId: principal.caseId,
      operationName: record.operationName,
      operationHash: record.operationHash,
      departments: [...record.departments].sort(),
      ...subjects,
    };
    return new Promise<void>((resolve, reject) => {
      if (record.subjects.length < LOCAL_SUBJECTS) {
        this.local.push({ record: message, resolve, reject });
        if (!this.localScheduled) {
          this.localScheduled = true;
          setImmediate(() => this.commitLocal());
        }
        return;
      }
      this.toWriter({ record: message, resolve, reject });
      // Sent at once (when the writer is free), so that it is written while the gateway
      // serialises the response.
      this.post();
    });
  }

  /**
   * Commits this turn's small records in one transaction on this thread, then has the log
   * flushed. The commit writes to the operating system's cache only (`synchronous = NORMAL`);
   * `fdatasync` of the log, in libuv's thread pool, makes it durable, and the callers are
   * answered after that: the same guarantee as `synchronous = FULL`, without blocking the event
   * loop on the disk and with commits going on while a flush is under way (each flush covers
   * every commit before it).
   */
  private commitLocal(): void {
    this.localScheduled = false;
    const batch = this.local;
    this.local = [];
    if (batch.length === 0) return;
    if (this.failure) {
      for (const local of batch) local.reject(this.failure);
      return;
    }
    try {
      this.appendRecords(batch.map((local) => local.record));
    } catch (error) {
      if ((error as { code?: string }).code === "SQLITE_BUSY") {
        // The writer thread (or another process) holds the write lock: it writes these next.
        for (const local of batch) this.toWriter(local);
        this.post();
        return;
      }
      const failure = new LedgerUnavailable(
        `the access could not be recorded: ${(error as Error).message}`,
      );
      for (const local of batch) local.reject(failure);
      return;
    }
    if (this.wal === null) {
      for (const local of batch) local.resolve();
      return;
    }
    for (const local of batch) this.unsynced.push(local);
    this.flushLog();
  }

  private flushLog(): void {
    if (this.syncing >= MAX_FLUSHES || this.unsynced.length === 0 || this.wal === null) return;
    const covered = this.unsynced;
    this.unsynced = [];
    this.syncing++;
    fdatasync(this.wal, (error) => {
      this.syncing--;
      if (error) {
        // Whether anything reached the disk is unknown: nothing more can be promised.
        const failure = new LedgerUnavailable(
          `the audit log could not be flushed: ${error.message}`,
        );
        for (const local of covered) local.reject(failure);
        this.fail(failure);
        return;
      }
      for (const local of covered) local.resolve();
      this.flushLog();
    });
  }

  private toWriter(local: Local): void {
    this.waiting.push({ id: local.record.id, resolve: local.resolve, reject: local.reject });
    this.outbox.push(local.record);
  }

  /** Hands the waiting records to the writer, unless a batch is still in flight (or `force`). */
  private post(force = false): void {
    if ((this.inFlight && !force) || this.outbox.length === 0 || this.failure) return;
    const records = this.outbox;
    this.outbox = [];
    this.inFlight = true;
    this.worker.postMessage({ type: "append", records });
  }

  entriesFor(subject: string, limit = 1000): Promise<LedgerEntry[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.reading.set(id, (message) => {
        if (message.type !== "entries") return;
        if (message.error) reject(new LedgerUnavailable(message.error));
        else resolve(message.entries);
      });
      this.worker.postMessage({ type: "entries", id, subject, limit });
    });
  }

  private receive(message: WriterMessage): void {
    if (message.type === "committed" || message.type === "failed") {
      this.inFlight = false;
      // The writer commits in the order records were handed to it, which is not the order of
      // their ids (a record that found the lock taken is handed over after later large ones):
      // what it acknowledges is everything handed over up to the record `upTo`.
      const done = this.waiting.findIndex((waiting) => waiting.id === message.upTo) + 1;
      const settled = this.waiting.slice(0, done);
      this.waiting = this.waiting.slice(done);
      for (const waiting of settled) {
        if (message.type === "committed") waiting.resolve();
        else
          waiting.reject(
            new LedgerUnavailable(`the access could not be recorded: ${message.message}`),
          );
      }
      this.post(); // what gathered meanwhile goes as the next batch
    } else if (message.type === "entries") {
      const reader = this.reading.get(message.id);
      this.reading.delete(message.id);
      reader?.(message);
    }
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.failure = error;
    this.outbox = [];
    for (const waiting of this.waiting) waiting.reject(error);
    this.waiting = [];
    for (const local of [...this.local, ...this.unsynced]) local.reject(error);
    this.local = [];
    this.unsynced = [];
    for (const reader of this.reading.values()) {
      reader({ type: "entries", id: 0, entries: [], error: error.message });
    }
    this.reading.clear();
  }

  /** Writes what is pending, waits until it is durable, then stops the writer. */
  close(): Promise<void> {
    if (!this.closed) {
      this.commitLocal();
      this.closed = this.logFlushed().then(() => this.stopWriter());
    }
    return this.closed;
  }

  private async logFlushed(): Promise<void> {
    while ((this.syncing > 0 || this.unsynced.length > 0) && !this.failure) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    this.sqlite.close();
    if (this.wal !== null) closeSync(this.wal);
  }

  private stopWriter(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.failure) {
        void this.worker.terminate().then(() => resolve());
        return;
      }
      this.post(true);
      this.worker.ref(); // keep the process alive until the writer has flushed and closed
      this.worker.on("message", (message: WriterMessage) => {
        if (message.type === "closed") resolve();
      });
      this.worker.once("exit", () => resolve());
      this.worker.postMessage({ type: "close" });
    });
  }
}
