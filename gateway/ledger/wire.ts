/** Records as the ledger carries them, and messages between the gateway and its writer thread. */
import type { LedgerEntry } from "./store.ts";

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
}

export type WriterMessage =
  /** Opened; `recovered` entries moved from the journals of gateways no longer running. */
  | { type: "ready"; recovered: number; problems: string[] }
  /** Everything made durable before the request `id` is in audit.db. */
  | { type: "moved"; id: number }
  /** The journal cannot be moved into audit.db: the ledger must stop acknowledging. */
  | { type: "failed"; message: string }
  | { type: "entries"; id: number; entries: LedgerEntry[]; error?: string }
  | { type: "closed" };
