/**
 * Proofs instead of certificates: signed by the gateway, checked by anyone with the published keys
 * (offline with jose, online with POST /proofs/verify, by `npm run proof -- verify`); any altered
 * byte fails, expired proofs fail, rotated keys keep verifying while published. Access to a
 * policy needs its `verify:` scope, and a proof shows the subject only as the desk may see it.
 */
import { execFile, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import {
  calculateJwkThumbprint,
  compactVerify,
  createLocalJWKSet,
  decodeJwt,
  type JSONWebKeySet,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maskPersonId } from "../../common/masking.ts";
import { ProofKeys } from "../../gateway/verification/keys.ts";
import { type ProofClaims, ProofSigner, verifyProof } from "../../gateway/verification/proofs.ts";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { D, Records } from "./records.ts";

const execFileAsync = promisify(execFile);
const POLICY = "beijing-car-lottery/individual";
const r = new Records();
const applicant = r.person();
r.licence(applicant);
const TTL_DAYS = 30;

const sha = (key: string) => `sha256:${createHash("sha256").update(key).digest("hex")}`;
const DESKS = {
  desks: [
    {
      id: "dev-desk",
      name: "Development desk",
      demo: true,
      keys: [sha("dev-desk-key")],
      purposes: [{ code: "demo", legalBasis: "tests", scopes: ["*"] }],
    },
    {
      id: "dev-lottery",
      name: "Lottery desk",
      demo: true,
      keys: [sha("dev-lottery-key")],
      purposes: [
        {
          code: "car-lottery",
          legalBasis: "tests",
          scopes: [
            "verify:beijing-car-lottery/individual",
            "verify:beijing-car-lottery/organization",
          ],
        },
      ],
    },
    {
      id: "housing",
      name: "Housing-purchase desk",
      keys: [sha("housing-desk-key")],
      purposes: [
        { code: "housing", legalBasis: "tests", scopes: ["identity:basic", "hukou:region"] },
      ],
    },
  ],
};
const HOUSING_DESK = { authorization: "Bearer housing-desk-key", "x-purpose": "housing" };

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
let base: string;
const saved = { ...process.env };

beforeAll(async () => {
  data = tempDataDir();
  r.write(data.dir);
  const desksFile = join(data.dir, "desks.json");
  writeFileSync(desksFile, JSON.stringify(DESKS));
  Object.assign(process.env, {
    DESKS_FILE: desksFile,
    PROOF_TTL_DAYS: String(TTL_DAYS),
    // Read the key store on every use, so that a rotation shows at once.
    PROOF_KEYS_RESCAN_MS: "0",
    AUDIT_SYNC: "normal",
  });
  platform = await startPlatform(data.dir);
  base = platform.url.replace(/\/graphql$/, "");
});

afterAll(() =>
  tearDown(
    platform,
    () => {
      process.env = saved;
    },
    data.remove,
  ),
);

async function proofFor(
  subject: string,
  headers: Record<string, string> = DEV_DESK,
): Promise<{ proof: string; errors?: unknown }> {
  const { body } = await platform.query<{ verify: Array<{ proof: string }> }>(
    `query ($s: [ID!]!) { verify(policy: "${POLICY}", subjects: $s, on: "${D}") { proof } }`,
    { s: [subject] },
    headers,
  );
  return { proof: body.data?.verify[0]?.proof ?? "", errors: body.errors };
}

async function jwks(): Promise<JSONWebKeySet> {
  return (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
}

async function checkOnline(proof: string) {
  const response = await fetch(`${base}/proofs/verify`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ proof }),
  });
  return (await response.json()) as { valid: boolean; problem?: string; claims?: ProofClaims };
}

/** Replaces the character at `index` with another base64url character. */
function alter(token: string, index: number): string {
  const replacement = token[index] === "A" ? "B" : "A";
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

describe("signed proofs", () => {
  it("a compact JWS (EdDSA, Ed25519) over the verdict, checkable offline with the JWKS", async () => {
    const { proof } = await proofFor(applicant);
    const keys = await jwks();
    expect(keys.keys).toHaveLength(1);
    expect(keys.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    const { protectedHeader, payload } = await compactVerify(proof, createLocalJWKSet(keys));
    expect(protectedHeader).toEqual({ alg: "EdDSA", kid: keys.keys[0]?.kid, typ: "verdict+jwt" });
    const claims = JSON.parse(new TextDecoder().decode(payload)) as ProofClaims;
    expect(claims).toMatchObject({
      iss: "mianzheng",
      sub: applicant,
      policy: POLICY,
      policyVersion: "2026.1",
      on: D,
      outcome: "ELIGIBLE",
      reasons: [],
      unavailable: [],
      desk: "dev-desk",
      purpose: "demo",
    });
    expect(Object.keys(claims.departments)).toEqual(["hukou", "traffic"]);
    expect(claims.exp - claims.iat).toBe(TTL_DAYS * 86_400);
    expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(120);
  });

  it("POST /proofs/verify checks it online and returns its claims", async () => {
    const { proof } = await proofFor(applicant);
    const check = await checkOnline(proof);
    expect(check).toMatchObject({ valid: true, claims: { sub: applicant, outcome: "ELIGIBLE" } });
    const asText = await fetch(`${base}/proofs/verify`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: proof,
    });
    expect(((await asText.json()) as { valid: boolean }).valid).toBe(true);
  });

  it("fails when any single character is altered, including the slack bits of the last one", async () => {
    const { proof } = await proofFor(applicant);
    const keys = await jwks();
    for (let index = 0; index < proof.length; index++) {
      if (proof[index] === ".") continue;
      const check = await verifyProof(alter(proof, index), keys);
      expect(check.valid, `altered at ${index}`).toBe(false);
    }
    // Over HTTP too, in each of the three segments.
    const [header = "", payload = ""] = proof.split(".");
    for (const index of [
      3,
      header.length + 10,
      header.length + payload.length + 5,
      proof.length - 1,
    ]) {
      expect((await checkOnline(alter(proof, index))).valid).toBe(false);
    }
    expect(await checkOnline(`${proof}A`)).toMatchObject({ valid: false });
    expect(await checkOnline(`${proof}.`)).toMatchObject({ valid: false, problem: "MALFORMED" });
  });

  it("an expired proof fails", async () => {
    const { proof } = await proofFor(applicant);
    const { exp } = decodeJwt(proof);
    const check = await verifyProof(proof, await jwks(), {
      currentDate: new Date(((exp as number) + 1) * 1000),
    });
    expect(check).toMatchObject({ valid: false, problem: "EXPIRED" });
    // One signed long ago with the gateway's own key, checked by the gateway.
    const keys = new ProofKeys({
      keysDir: join(data.dir, "keys"),
      signingKeyFile: null,
      publishedKeysFile: null,
      proofTtlSeconds: TTL_DAYS * 86_400,
      production: false,
    });
    const old = new ProofSigner(keys).sign({
      ...(decodeJwt(proof) as unknown as ProofClaims),
      iat: Math.floor(Date.now() / 1000) - 40 * 86_400,
      exp: Math.floor(Date.now() / 1000) - 10 * 86_400,
    });
    expect(await checkOnline(old)).toMatchObject({ valid: false, problem: "EXPIRED" });
  });

  it("after a rotation the new key signs, and proofs of the old one verify while it is published", async () => {
    const before = await proofFor(applicant);
    const oldKid = (await jwks()).keys[0]?.kid;
    const rotate = spawnSync(process.execPath, ["--import", "tsx", "scripts/proof.ts", "rotate"], {
      env: { ...process.env, DATA_DIR: data.dir },
      encoding: "utf8",
    });
    expect(rotate.status, rotate.stderr).toBe(0);
    const after = await proofFor(applicant);
    const keys = await jwks();
    expect(keys.keys.map((key) => key.kid)).toContain(oldKid);
    expect(keys.keys).toHaveLength(2);
    const newKid = JSON.parse(
      Buffer.from(after.proof.split(".")[0] as string, "base64url").toString(),
    ).kid;
    expect(newKid).not.toBe(oldKid);
    expect((await checkOnline(before.proof)).valid).toBe(true);
    expect((await checkOnline(after.proof)).valid).toBe(true);

    // Once every proof the old key can have signed has expired, it is no longer published, and
    // its proofs fail as signed by an unknown key.
    const store = new ProofKeys({
      keysDir: join(data.dir, "keys"),
      signingKeyFile: null,
      publishedKeysFile: null,
      proofTtlSeconds: TTL_DAYS * 86_400,
      production: false,
    });
    const later = Date.now() + (TTL_DAYS + 1) * 86_400_000;
    const retired = { keys: store.publishedKeys(later) };
    expect(retired.keys.map((key) => key.kid)).toEqual([newKid]);
    expect(await verifyProof(before.proof, retired)).toMatchObject({
      valid: false,
      problem: "UNKNOWN_KEY",
    });
    expect((await verifyProof(after.proof, retired)).valid).toBe(true);
  });

  it("npm run proof -- verify prints the claims, and exits non-zero for an altered proof", async () => {
    const { proof } = await proofFor(applicant);
    const jwksFile = join(data.dir, "jwks.json");
    writeFileSync(jwksFile, JSON.stringify(await jwks()));
    const run = (token: string) =>
      spawnSync(
        process.execPath,
        ["--import", "tsx", "scripts/proof.ts", "verify", token, "--jwks", jwksFile],
        {
          encoding: "utf8",
        },
      );
    const valid = run(proof);
    expect(valid.status, valid.stderr).toBe(0);
    expect(valid.stdout).toContain(`"sub": "${applicant}"`);
    expect(valid.stdout).toContain('"outcome": "ELIGIBLE"');
    const altered = run(alter(proof, 40));
    expect(altered.status).toBe(1);
    expect(altered.stderr).toContain("INVALID proof");
    // A wrong option is a wrong usage, as a wrong command is.
    const unknown = spawnSync(
      process.execPath,
      ["--import", "tsx", "scripts/proof.ts", "verify", proof, "--jwsk", jwksFile],
      { encoding: "utf8" },
    );
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("usage");
    // Online, from the gateway's JWKS (asynchronously: the gateway runs in this process).
    const online = await execFileAsync(process.execPath, [
      "--import",
      "tsx",
      "scripts/proof.ts",
      "verify",
      proof,
      "--jwks",
      `${base}/.well-known/jwks.json`,
    ]);
    expect(online.stdout).toContain("valid proof");
    // Without --jwks or a key store, from the gateway GATEWAY_URL names.
    const elsewhere = mkdtempSync(join(tmpdir(), "mianzheng-proof-"));
    try {
      const env = { ...process.env, DATA_DIR: elsewhere, GATEWAY_URL: `${base}/graphql` };
      const fallback = await execFileAsync(
        process.execPath,
        ["--import", "tsx", "scripts/proof.ts", "verify", proof],
        { env },
      );
      expect(fallback.stdout).toContain(`keys from ${base}/.well-known/jwks.json`);
      // Keys that cannot be read say nothing about the proof: 2, not "INVALID" (1).
      const unreachable = await execFileAsync(
        process.execPath,
        ["--import", "tsx", "scripts/proof.ts", "verify", proof],
        { env: { ...env, GATEWAY_URL: "http://127.0.0.1:1/graphql" } },
      ).catch((error: { code: number; stderr: string }) => error);
      expect("code" in unreachable && unreachable.code).toBe(2);
      expect(unreachable.stderr).toContain(
        "cannot check: the keys could not be read from http://127.0.0.1:1/.well-known/jwks.json",
      );
      expect(unreachable.stderr).not.toContain("INVALID");
      // A key file that is missing or is no key set: unchecked as well.
      const missing = await execFileAsync(
        process.execPath,
        ["--import", "tsx", "scripts/proof.ts", "verify", proof, "--jwks", join(elsewhere, "none")],
        { env },
      ).catch((error: { code: number; stderr: string }) => error);
      expect("code" in missing && missing.code).toBe(2);
      expect(missing.stderr).toContain("cannot check: the keys could not be read");
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe("who may verify, and what a proof shows", () => {
  it("a desk whose purpose lacks verify:<policy> is refused with FORBIDDEN", async () => {
    const { errors, proof } = await proofFor(applicant, HOUSING_DESK);
    expect(proof).toBe("");
    expect(errors).toMatchObject([
      {
        extensions: { code: "FORBIDDEN" },
        message: expect.stringContaining("verify:beijing-car-lottery/individual"),
      },
    ]);
  });

  it("an unknown policy is a BAD_USER_INPUT naming the argument", async () => {
    const { body } = await platform.query(
      `{ verify(policy: "no/such", subjects: ["${applicant}"]) { outcome } }`,
    );
    expect(body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "policy",
    });
  });

  it("the lottery desk, without identity:basic, gets proofs with the subject masked", async () => {
    const { proof, errors } = await proofFor(applicant, LOTTERY_DESK);
    expect(errors).toBeUndefined();
    const claims = decodeJwt(proof) as unknown as ProofClaims;
    expect(claims.sub).toBe(maskPersonId(applicant));
    expect(claims).toMatchObject({
      desk: "dev-lottery",
      purpose: "car-lottery",
      outcome: "ELIGIBLE",
    });
  });

  it("every verification is in the audit ledger: desk, purpose, policy and the facts consulted", async () => {
    await proofFor(applicant, LOTTERY_DESK);
    await platform.ledgerMoved();
    const ledger = new Database(join(data.dir, "audit.db"), { readonly: true });
    const rows = ledger
      .prepare(
        `SELECT r.desk_id AS desk, r.purpose, r.operation_name AS operation, r.selections, e.outcome
         FROM entries e JOIN request_details r ON r.seq = e.request WHERE e.subject = ?`,
      )
      .all(applicant) as Array<{
      desk: string;
      purpose: string;
      operation: string;
      selections: string;
      outcome: string;
    }>;
    ledger.close();
    const entry = rows.find((row) => row.desk === "dev-lottery");
    expect(entry).toMatchObject({
      purpose: "car-lottery",
      operation: `verify ${POLICY}`,
      outcome: "answered",
    });
    expect(entry?.selections).toContain("Person.hasValidDriverLicense");
    expect(entry?.selections).toContain("Person.alive");
  });

  it("Query.policies lists the policies with their scope, departments and reason codes", async () => {
    const { body } = await platform.query<{
      policies: Array<{
        name: string;
        scope: string;
        subjectKind: string;
        departments: string[];
        reasons: Array<{ code: string }>;
      }>;
    }>("{ policies { name scope subjectKind departments reasons { code } } }", {}, HOUSING_DESK);
    expect(body.data?.policies.map((p) => [p.name, p.scope, p.subjectKind, p.departments])).toEqual(
      [
        [POLICY, `verify:${POLICY}`, "PERSON", ["hukou", "traffic", "social", "tax"]],
        [
          "beijing-car-lottery/organization",
          "verify:beijing-car-lottery/organization",
          "ORGANIZATION",
          ["tax", "market"],
        ],
      ],
    );
    expect(body.data?.policies[0]?.reasons.map((reason) => reason.code)).toEqual([
      "INVALID_ID",
      "SUBJECT_NOT_FOUND",
      "DECEASED",
      "UNDERAGE",
      "NO_RESIDENCY_QUALIFICATION",
      "NO_VALID_DRIVER_LICENSE",
      "OWNS_CAR_IN_BEIJING",
    ]);
  });
});

describe("production keys", () => {
  it("are never generated: without PROOF_SIGNING_KEY_FILE the gateway refuses to start", () => {
    const options = {
      keysDir: join(data.dir, "no-keys-here"),
      signingKeyFile: null,
      publishedKeysFile: null,
      proofTtlSeconds: 86_400,
      production: true,
    };
    expect(() => new ProofKeys(options)).toThrow(/PROOF_SIGNING_KEY_FILE/);
  });

  it("sign with the configured key and publish the earlier ones listed", async () => {
    const current = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
    const earlier = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
    const signingKeyFile = join(data.dir, "signing.jwk");
    const publishedKeysFile = join(data.dir, "published.jwks");
    writeFileSync(signingKeyFile, JSON.stringify(current));
    writeFileSync(publishedKeysFile, JSON.stringify({ keys: [{ ...earlier, kid: "2025-key" }] }));
    const keys = new ProofKeys({
      keysDir: join(data.dir, "unused"),
      signingKeyFile,
      publishedKeysFile,
      proofTtlSeconds: 86_400,
      production: true,
    });
    const published = keys.publishedKeys();
    expect(published.map((key) => key.kid)).toEqual([
      await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: current.x as string }),
      "2025-key",
    ]);
    const token = new ProofSigner(keys, 0).sign({
      ...({} as ProofClaims),
      sub: "x",
      policy: POLICY,
      policyVersion: "1",
      outcome: "ELIGIBLE",
      on: D,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 60,
    });
    expect((await verifyProof(token, { keys: published })).valid).toBe(true);
  });
});
