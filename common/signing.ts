/**
 * Gateway-to-department request signing. Departments serve only the gateway: every subgraph
 * request carries `x-mianzheng-signature: t=<ms>,n=<nonce>,v1=<hex HMAC-SHA256(secret,
 * t + "." + n + "." + body)>` with a secret per department. A subgraph refuses unsigned, wrongly
 * signed, stale or replayed requests, so `_entities` and `_service` are unreachable around the
 * gateway. The nonce makes two requests of the same body in the same millisecond two signatures,
 * so that the second is not taken for a replay of the first.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Department } from "./departments.ts";
import { isProduction } from "./environment.ts";

export const SIGNATURE_HEADER = "x-mianzheng-signature";
/** How far a signature's timestamp may be from the subgraph's clock, either way. */
export const REPLAY_WINDOW_MS = 30_000;

/** `MIANZHENG_SECRET_HUKOU` etc.; development falls back to a fixed, documented secret. */
export function departmentSecret(department: Department): string {
  const fromEnv = process.env[`MIANZHENG_SECRET_${department.toUpperCase()}`];
  if (fromEnv) return fromEnv;
  if (isProduction()) {
    throw new Error(
      `MIANZHENG_SECRET_${department.toUpperCase()} must be set in production (the gateway signs every request to ${department})`,
    );
  }
  return `mianzheng-development-secret-${department}`;
}

function mac(secret: string, timestamp: string, nonce: string, body: string | Buffer): string {
  return createHmac("sha256", secret).update(`${timestamp}.${nonce}.`).update(body).digest("hex");
}

/** Unique within this process (a counter), and across processes (a random prefix). */
const NONCE_PREFIX = randomBytes(6).toString("hex");
let nonces = 0;

export function signBody(secret: string, body: string | Buffer, at = Date.now()): string {
  const timestamp = String(at);
  const nonce = `${NONCE_PREFIX}${(nonces++).toString(36)}`;
  return `t=${timestamp},n=${nonce},v1=${mac(secret, timestamp, nonce, body)}`;
}

export type SignatureProblem = "missing" | "malformed" | "stale" | "mismatch" | "replayed";

/**
 * Checks signatures and remembers the ones seen within the window, so that a captured request
 * cannot be sent again.
 */
export class SignatureVerifier {
  private seen = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private readonly secret: string,
    private readonly windowMs = REPLAY_WINDOW_MS,
  ) {}

  check(
    header: string | undefined,
    body: string | Buffer,
    now = Date.now(),
  ): SignatureProblem | null {
    if (!header) return "missing";
    const match = /^t=(\d{1,16}),n=([0-9a-z]{1,64}),v1=([0-9a-f]{64})$/.exec(header);
    if (!match) return "malformed";
    const timestamp = match[1] as string;
    const given = Buffer.from(match[3] as string, "hex");
    if (Math.abs(now - Number(timestamp)) > this.windowMs) return "stale";
    const expected = Buffer.from(mac(this.secret, timestamp, match[2] as string, body), "hex");
    if (!timingSafeEqual(given, expected)) return "mismatch";
    this.sweep(now);
    const signature = match[3] as string;
    if (this.seen.has(signature)) return "replayed";
    this.seen.set(signature, Number(timestamp));
    return null;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [signature, at] of this.seen) {
      if (now - at > this.windowMs) this.seen.delete(signature);
    }
  }
}
