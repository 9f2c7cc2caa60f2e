/**
 * The audit ledger as the gateway uses it: `append` a request's accesses and wait until they are
 * durable, `entriesFor` a subject. Writes happen in the writer thread (`writer.ts`).
 *
 * Guarantee: `append` resolves only after the transaction holding the record has committed —
 * with `AUDIT_SYNC=full` (the default) after the WAL was fsynced, so an acknowledged access
 * survives a process crash and a power loss; with `AUDIT_SYNC=normal`, a process crash but not
 * a power loss. The gateway sends a response only after `append` resolved, so no data leaves
 * without its access on disk. If the ledger cannot write, the request fails and nothing is
 * disclosed.
 */
import { Worker } from "node:worker_threads";
import type { Principal } from "../principal.ts";
import type { LedgerEntry } from "./store.ts";
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

export class AuditLedger implements AccessLedger {
  private nextId = 1;
  private waiting: Waiting[] = [];
  private readonly reading = new Map<number, (message: WriterMessage) => void>();
  private failure: Error | null = null;
  /**
   * Records not yet handed to the writer. One batch is in flight at a time: records arriving
   * while the writer commits wait here and go together, one message per commit, so a busy
   * gateway pays the cross-thread hand-off once per batch rather than once per request.
   */
  private outbox: WireRecord[] = [];
  private inFlight = false;
  private postScheduled = false;
  private closed: Promise<void> | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (message: WriterMessage) => this.receive(message));
    worker.on("error", (error) =>
      this.fail(new LedgerUnavailable(`ledger writer failed: ${error.message}`)),
    );
    worker.on("exit", () => this.fail(new LedgerUnavailable("the ledger writer stopped")));
  }

  /** Starts the writer over `dir/audit.db` and waits until it has opened the file. */
  static async open(dir: string, sync: "full" | "normal"): Promise<AuditLedger> {
    const worker = new Worker(new URL("./worker.mjs", import.meta.url), {
      workerData: { module: new URL("./writer.ts", import.meta.url).href, dir, sync },
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
    return new AuditLedger(worker);
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
      this.waiting.push({ id, resolve, reject });
      this.outbox.push(message);
      // A large record goes at once (when the writer is free), so that it is written while the
      // gateway serialises the response; small ones gather for the rest of this turn at least.
      if (record.subjects.length >= 64) this.post();
      else if (!this.postScheduled && !this.inFlight) {
        this.postScheduled = true;
        setImmediate(() => {
          this.postScheduled = false;
          this.post();
        });
      }
    });
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
      let done = 0;
      while (done < this.waiting.length && (this.waiting[done] as Waiting).id <= message.upTo)
        done++;
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
    for (const reader of this.reading.values()) {
      reader({ type: "entries", id: 0, entries: [], error: error.message });
    }
    this.reading.clear();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = new Promise<void>((resolve) => {
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
    return this.closed;
  }
}
