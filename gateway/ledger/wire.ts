/** Records as the ledger carries them, and messages between the gateway and its writer thread. */
import type { LedgerEntry, Migration } from "./store.ts";

export type AccessOutcome = "answered" | "partial" | "not-found" | "failed";

/** One subject touched by a request. */
export interface SubjectAccess {
  /** Identity number or unified social credit code, normalised (upper case). */
  subject: string;
  /** Facts disclosed, as `Type.field`; arrays may be shared between subjects of one request. */
  fields: readonly string[];
  /** Facts asked for but withheld. */
  denied: readonly string[];
  outcome: AccessOutcome;
}

/** The facts a group of subjects was asked for (shared by the subjects of one selection). */
export interface Selection {
  fields: readonly string[];
  denied: readonly string[];
}

/**
 * A request's accesses as the journal and the writer thread carry them: compact, so that a
 * 1,000-subject record is a few strings, not a thousand objects.
 */
export interface WireRecord {
  at: string;
  requestId: string;
  deskId: string | null;
  deskName: string | null;
  purpose: string | null;
  legalBasis: string | null;
  caseId: string | null;
  operationName: string | null;
  operationHash: string;
  departments: readonly string[];
  selections: readonly Selection[];
  /** Subjects joined by "\n". */
  subjects: string;
  /** Selection of each subject, in order. */
  picks: Uint16Array;
  /** Outcome of each subject, one letter each: see OUTCOME_LETTERS. */
  outcomes: string;
}

export const OUTCOME_LETTERS: Record<AccessOutcome, string> = {
  answered: "a",
  partial: "p",
  "not-found": "n",
  failed: "f",
};

export const OUTCOME_OF_LETTER: Record<string, AccessOutcome> = {
  a: "answered",
  p: "partial",
  n: "not-found",
  f: "failed",
};

export interface LedgerRequest {
  type: "entries";
  id: number;
  subject: string;
  limit: number;
  /** Entries older than this one only (a later page of the log). */
  before?: number;
}

export type WriterMessage =
  /**
   * Opened; `recovered` entries moved from the journals of gateways no longer running; a format-1
   * file `migrated`.
   */
  | { type: "ready"; recovered: number; problems: string[]; migrated: Migration | null }
  /** Everything acknowledged before the request is in audit.db; or `error`, why it is not. */
  | { type: "moved"; id: number; error?: string }
  /** Journals of gateways that stopped while this one ran, moved into audit.db. */
  | { type: "recovered"; entries: number; problems: string[] }
  /** The journal cannot be moved into audit.db: the ledger must stop acknowledging. */
  | { type: "failed"; message: string }
  | { type: "entries"; id: number; entries: LedgerEntry[]; error?: string }
  /** audit.db's entries, and how many of them the subject index does not hold yet. */
  | { type: "status"; id: number; entries: number; unindexed: number; error?: string }
  | { type: "closed" };

/**
 * JSON of the parts of a record that repeat from request to request — a plan's selections (one
 * text per plan, found by the plan's own field arrays), a desk's names, a purpose's legal basis,
 * an operation — encoded once and remembered: they are most of a small record's text.
 */
export class JsonFragments {
  private readonly bySelection = new WeakMap<
    readonly string[],
    WeakMap<readonly string[], string>
  >();
  private readonly literals = new Map<string, string>();
  private readonly lists = new Map<string, string>();

  /** `JSON.stringify(selections)`. */
  selections(selections: readonly Selection[]): string {
    const only = selections[0];
    if (selections.length !== 1 || !only || Object.keys(only).length !== 2) {
      return JSON.stringify(selections);
    }
    let byDenied = this.bySelection.get(only.fields);
    if (!byDenied) {
      byDenied = new WeakMap();
      this.bySelection.set(only.fields, byDenied);
    }
    let json = byDenied.get(only.denied);
    if (json === undefined) {
      json = JSON.stringify([{ fields: only.fields, denied: only.denied }]);
      byDenied.set(only.denied, json);
    }
    return json;
  }

  /** `JSON.stringify(value)` of a string that recurs. */
  literal(value: string | null): string {
    if (value === null) return "null";
    let literal = this.literals.get(value);
    if (literal === undefined) {
      // Values repeat across requests (a few desks, purposes, plans): the bound only guards memory.
      if (this.literals.size >= 10_000) this.literals.clear();
      literal = JSON.stringify(value);
      this.literals.set(value, literal);
    }
    return literal;
  }

  /** `JSON.stringify(list)` of a short list of strings that recurs (departments). */
  list(list: readonly string[]): string {
    const key = list.join("\u0000");
    let json = this.lists.get(key);
    if (json === undefined) {
      if (this.lists.size >= 1_000) this.lists.clear();
      json = JSON.stringify(list);
      this.lists.set(key, json);
    }
    return json;
  }
}
