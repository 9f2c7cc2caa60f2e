/**
 * The Ed25519 keys that sign proofs, and which public keys are published.
 *
 * Development: keys live in `DATA_DIR/keys/proof-key-NNNN.json` (private, mode 0600), generated on
 * first use; `npm run proof -- rotate` adds the next one, which signs from then on (running
 * gateways notice within seconds). A superseded key stays published until every proof it can
 * have signed has expired: its successor's creation time plus the proof lifetime.
 *
 * Production: the signing key is a private JWK in `PROOF_SIGNING_KEY_FILE`, earlier public keys
 * that must stay published are a JWKS in `PROOF_PUBLISHED_KEYS_FILE`; nothing is generated.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { syncPath } from "../../common/files.ts";

/** A public Ed25519 key as JWKS serves it. */
export interface PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  alg: "EdDSA";
  use: "sig";
}

type PrivateJwk = {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  d: string;
  kid?: string;
};

/** A key file of the development store. */
interface StoredKey {
  kid: string;
  /** When the key was made; it signs until the next key is made. */
  created: string;
  /** Position in the store (from the file name): the highest signs. */
  sequence: number;
  jwk: PrivateJwk;
}

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** RFC 7638 thumbprint of an Ed25519 key: the key id, stable whatever else the JWK carries. */
export function jwkThumbprint(x: string): string {
  return createHash("sha256")
    .update(JSON.stringify({ crv: "Ed25519", kty: "OKP", x }))
    .digest("base64url");
}

function publicJwk(x: string, kid: string): PublicJwk {
  return { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" };
}

function isPrivateJwk(value: unknown): value is PrivateJwk {
  const jwk = value as PrivateJwk;
  return (
    typeof jwk === "object" &&
    jwk !== null &&
    jwk.kty === "OKP" &&
    jwk.crv === "Ed25519" &&
    typeof jwk.x === "string" &&
    typeof jwk.d === "string"
  );
}

const KEY_FILE = /^proof-key-(\d{4,})\.json$/;
/** Slack for gateways that signed with the old key until their next rescan, and for clock skew. */
const PUBLISH_MARGIN_MS = 3_600_000;

export interface ProofKeysOptions {
  keysDir: string;
  signingKeyFile: string | null;
  publishedKeysFile: string | null;
  proofTtlSeconds: number;
  /** Refuse to generate keys (production). */
  production: boolean;
  /** How often the key directory is read again, so that a rotation reaches running gateways. */
  keysRescanMs?: number;
}

export class ProofKeys {
  private stored: StoredKey[] = [];
  private scannedAt = 0;
  private signing: SigningKey | null = null;
  private readonly fixed: { signing: SigningKey; published: PublicJwk[] } | null;
  private readonly rescanMs: number;

  constructor(private readonly options: ProofKeysOptions) {
    this.rescanMs = options.keysRescanMs ?? 10_000;
    this.fixed = options.signingKeyFile ? this.loadConfigured(options.signingKeyFile) : null;
    if (!this.fixed && options.production && this.scan().length === 0) {
      throw new Error(
        `no proof-signing key: set PROOF_SIGNING_KEY_FILE (a private Ed25519 JWK) or create one in ${options.keysDir} with \`npm run proof -- rotate\``,
      );
    }
  }

  /** The key that signs now (generated on first use in development). */
  signingKey(): SigningKey {
    if (this.fixed) return this.fixed.signing;
    if (!this.signing || Date.now() - this.scannedAt > this.rescanMs) {
      let keys = this.scan();
      if (keys.length === 0) {
        this.rotate();
        keys = this.scan();
      }
      const newest = keys[keys.length - 1] as StoredKey;
      if (this.signing?.kid !== newest.kid) {
        this.signing = {
          kid: newest.kid,
          privateKey: createPrivateKey({ key: newest.jwk, format: "jwk" }),
        };
      }
    }
    return this.signing as SigningKey;
  }

  /** The public keys whose proofs may still be unexpired: the JWKS. */
  publishedKeys(now = Date.now()): PublicJwk[] {
    if (this.fixed) return [publicJwkOf(this.fixed.signing), ...this.fixed.published];
    const keys = Date.now() - this.scannedAt > this.rescanMs ? this.scan() : this.stored;
    const ttlMs = this.options.proofTtlSeconds * 1000;
    return keys
      .filter((_key, index) => {
        const successor = keys[index + 1];
        return !successor || Date.parse(successor.created) + ttlMs + PUBLISH_MARGIN_MS > now;
      })
      .map((key) => publicJwk(key.jwk.x, key.kid));
  }

  /**
   * Makes a new signing key in the development store and returns its id. Files are created
   * exclusively, so two gateways starting at once on an empty store agree on one first key.
   */
  rotate(): string {
    if (this.fixed) throw new Error("keys come from PROOF_SIGNING_KEY_FILE: rotate them there");
    mkdirSync(this.options.keysDir, { recursive: true, mode: 0o700 });
    for (;;) {
      const keys = this.scan();
      const next = keys.length === 0 ? 1 : (keys[keys.length - 1] as StoredKey).sequence + 1;
      const { privateKey } = generateKeyPairSync("ed25519");
      const jwk = privateKey.export({ format: "jwk" }) as PrivateJwk;
      const kid = jwkThumbprint(jwk.x);
      const stored: StoredKey = {
        kid,
        created: new Date().toISOString(),
        sequence: next,
        jwk: { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d, kid },
      };
      const file = join(this.options.keysDir, `proof-key-${String(next).padStart(4, "0")}.json`);
      // Written whole and flushed under a name of its own, then linked into place: another
      // gateway scanning the store never reads a key file half written, and a key that signed
      // proofs survives a power loss. The link fails if another gateway took the number first.
      const draft = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
      const fd = openSync(draft, "wx", 0o600);
      try {
        writeFileSync(fd, `${JSON.stringify(stored, null, 2)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(draft, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") {
          if (keys.length === 0) return (this.scan()[0] as StoredKey).kid;
          continue;
        }
        throw error;
      } finally {
        unlinkSync(draft);
      }
      chmodSync(file, 0o600);
      // The folder's new entry too: the key is the one later proofs are checked against.
      syncPath(this.options.keysDir);
      this.scannedAt = 0;
      return kid;
    }
  }

  private scan(): StoredKey[] {
    const dir = this.options.keysDir;
    const files = existsSync(dir)
      ? readdirSync(dir)
          .filter((name) => KEY_FILE.test(name))
          .sort((a, b) => Number(KEY_FILE.exec(a)?.[1]) - Number(KEY_FILE.exec(b)?.[1]))
      : [];
    this.stored = files.map((name) => {
      const stored = JSON.parse(readFileSync(join(dir, name), "utf8")) as StoredKey;
      if (!isPrivateJwk(stored.jwk)) throw new Error(`${join(dir, name)} is not an Ed25519 key`);
      return { ...stored, sequence: Number(KEY_FILE.exec(name)?.[1]) };
    });
    this.scannedAt = Date.now();
    return this.stored;
  }

  private loadConfigured(file: string): { signing: SigningKey; published: PublicJwk[] } {
    const jwk = JSON.parse(readFileSync(file, "utf8")) as unknown;
    if (!isPrivateJwk(jwk)) throw new Error(`${file} is not a private Ed25519 JWK`);
    const kid = jwk.kid ?? jwkThumbprint(jwk.x);
    const signing = {
      kid,
      privateKey: createPrivateKey({
        key: { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d },
        format: "jwk",
      }),
    };
    const published: PublicJwk[] = [];
    if (this.options.publishedKeysFile) {
      const set = JSON.parse(readFileSync(this.options.publishedKeysFile, "utf8")) as {
        keys?: Array<{ x?: unknown; kid?: unknown; crv?: unknown }>;
      };
      for (const key of set.keys ?? []) {
        if (key.crv !== "Ed25519" || typeof key.x !== "string") {
          throw new Error(`${this.options.publishedKeysFile}: only Ed25519 public keys`);
        }
        const id = typeof key.kid === "string" ? key.kid : jwkThumbprint(key.x);
        if (id !== kid) published.push(publicJwk(key.x, id));
      }
    }
    return { signing, published };
  }
}

function publicJwkOf(key: SigningKey): PublicJwk {
  const jwk = createPublicKey(key.privateKey).export({ format: "jwk" }) as { x: string };
  return publicJwk(jwk.x, key.kid);
}
