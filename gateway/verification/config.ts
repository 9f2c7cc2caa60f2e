/** Verification settings, from the environment (documented in `policies/README.md`). */
import { join } from "node:path";
import { isProduction } from "../../common/environment.ts";
import { integer } from "../config.ts";

export interface VerificationConfig {
  /** `iss` of every proof (`PROOF_ISSUER`, default `mianzheng`). */
  issuer: string;
  /** How long a proof is valid after its issue time (`PROOF_TTL_DAYS`, default 90). */
  proofTtlSeconds: number;
  /** Development key store: Ed25519 keys generated on first use (`PROOF_KEYS_DIR`, default `DATA_DIR/keys`). */
  keysDir: string;
  /** Worker threads that sign batches of proofs (`PROOF_SIGNING_THREADS`, default 1; 0 = none). */
  signingThreads: number;
  /** How often the key store is read again (`PROOF_KEYS_RESCAN_MS`, default 10 s). */
  keysRescanMs: number;
  /** Production: the signing key, a private Ed25519 JWK in a file (`PROOF_SIGNING_KEY_FILE`). */
  signingKeyFile: string | null;
  /** Production: earlier public keys still to publish, a JWKS file (`PROOF_PUBLISHED_KEYS_FILE`). */
  publishedKeysFile: string | null;
  /**
   * Most subjects in one `verify` call (`VERIFY_MAX_SUBJECTS`, default 1,000; with security on,
   * the gateway's list-size limit `MAX_LIST_SIZE` applies to the argument as well).
   */
  maxSubjects: number;
  /** Subjects per federated operation inside a `verify` call (`VERIFY_BATCH_SIZE`, default 1,000). */
  batchSize: number;
  /** Where `POST /jobs` keeps uploads and results (`JOBS_DIR`, default `DATA_DIR/jobs`). */
  jobsDir: string;
  /** Largest upload accepted by `POST /jobs`, bytes (`JOBS_MAX_BYTES`, default 512 MiB). */
  jobsMaxBytes: number;
  /** Batches of one job verified at the same time (`JOBS_CONCURRENCY`, default 2). */
  jobsConcurrency: number;
  production: boolean;
}

export function verificationConfigFromEnv(
  dataDir: string,
  overrides: Partial<VerificationConfig> = {},
): VerificationConfig {
  return {
    issuer: process.env.PROOF_ISSUER || "mianzheng",
    proofTtlSeconds: integer("PROOF_TTL_DAYS", 90, 1) * 86_400,
    keysDir: process.env.PROOF_KEYS_DIR || join(dataDir, "keys"),
    signingThreads: integer("PROOF_SIGNING_THREADS", 1),
    keysRescanMs: integer("PROOF_KEYS_RESCAN_MS", 10_000),
    signingKeyFile: process.env.PROOF_SIGNING_KEY_FILE || null,
    publishedKeysFile: process.env.PROOF_PUBLISHED_KEYS_FILE || null,
    maxSubjects: integer("VERIFY_MAX_SUBJECTS", 1_000, 1),
    batchSize: integer("VERIFY_BATCH_SIZE", 1_000, 1),
    jobsDir: process.env.JOBS_DIR || join(dataDir, "jobs"),
    jobsMaxBytes: integer("JOBS_MAX_BYTES", 512 * 1024 * 1024, 1),
    jobsConcurrency: integer("JOBS_CONCURRENCY", 2, 1),
    production: isProduction(),
    ...overrides,
  };
}
