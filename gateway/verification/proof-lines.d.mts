import type { KeyObject } from "node:crypto";

/** What every proof of a batch states alike (ProofClaims without the per-verdict claims). */
export interface BatchClaims {
  iss: string;
  policy: string;
  policyVersion: string;
  on: string;
  desk: string | null;
  purpose: string | null;
  caseId: string | null;
  iat: number;
  exp: number;
}

/**
 * The verdicts of a batch, packed so that posting them to a signing thread copies little: the
 * JSON of the lists verdicts share (reasons, unavailable departments, the departments claim) is
 * sent once, each verdict pointing at it by index.
 */
export interface PackedVerdicts {
  count: number;
  /** The subject as asked (normalised), as the result line gives it. */
  subjects: string[];
  /** The subject as the proof states it (masked), or null when it is the same as `subjects`. */
  subs: string[] | null;
  outcomes: string[];
  /** Distinct JSON texts: `["NO_VALID_DRIVER_LICENSE"]`, `[]`, `{"hukou":"…"}`… */
  lists: string[];
  reasons: Uint32Array;
  unavailable: Uint32Array;
  departments: Uint32Array;
  /** The quota of each verdict (NaN: none), or null for a policy without quotas. */
  quotas: Float64Array | null;
}

export interface LineBatch {
  /** The JWS protected header, base64url (it names the signing key). */
  header: string;
  common: BatchClaims;
  verdicts: PackedVerdicts;
}

/** Signs Ed25519: with libsodium when it is installed, else with node:crypto (the same bytes). */
export interface Ed25519Signer {
  library: "libsodium" | "node:crypto";
  /** The signature; a signer may return the same buffer each time, so read it at once. */
  sign(data: Uint8Array): Buffer;
}

export function ed25519Signer(key: KeyObject): Ed25519Signer;

/** Result lines of verdicts `start` to `end` (exclusive), with proofs when `signer` is given. */
export function encodeLines(
  batch: LineBatch,
  start: number,
  end: number,
  signer: Ed25519Signer | null,
): Buffer;
