// Encodes verdicts as result lines, each with its proof: the claims' JSON, its base64url, the JWS
// signing input, the Ed25519 signature and the line `npm run verify` writes, straight into one
// buffer per part. The signing threads run it (signing-worker.mjs), and so does the gateway itself
// for lines without proofs or when it has no signing thread.
//
// Plain JavaScript: a worker thread does not inherit tsx's loader. The types are in
// proof-lines.d.mts; the wire format is described there (PackedVerdicts).
//
// The bytes are exactly those of `JSON.stringify(claims)` with the claims in the order of
// ProofClaims, and of `formatResultLine`: test/verification/proof-lines.test.ts compares them.
import { sign } from "node:crypto";

// libsodium signs Ed25519 in a little over half the time OpenSSL takes through node:crypto (about 17
// against 30 µs on the development machine), and Ed25519 signatures are deterministic: the same
// key and input give the same bytes either way. Used when the package is installed.
let sodium = null;
try {
  sodium = (await import("sodium-native")).default;
} catch {}

/**
 * @param {import("node:crypto").KeyObject} key a private Ed25519 key
 * @returns {import("./proof-lines.d.mts").Ed25519Signer}
 */
export function ed25519Signer(key) {
  if (sodium) {
    const jwk = key.export({ format: "jwk" });
    // libsodium's secret key: the seed, then the public key, in memory of libsodium's own.
    const secret = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
    secret.write(jwk.d, 0, "base64url");
    secret.write(jwk.x, 32, "base64url");
    const signature = Buffer.alloc(sodium.crypto_sign_BYTES);
    return {
      library: "libsodium",
      sign(data) {
        sodium.crypto_sign_detached(signature, data, secret);
        return signature;
      },
    };
  }
  return { library: "node:crypto", sign: (data) => sign(null, data, key) };
}

const json = JSON.stringify;

/** Upper bound of the UTF-8 length of a string. */
const most = (text) => text.length * 3;

const NOT_ASCII = /[^\x00-\x7f]/;

/**
 * The encoding to write text with: latin1 copies ASCII as it is, several times faster than UTF-8
 * encoding; any other text is written as UTF-8.
 */
const encodingOf = (text) => (NOT_ASCII.test(text) ? "utf8" : "latin1");

/**
 * @param {import("./proof-lines.d.mts").LineBatch} batch
 * @param {number} start first verdict of the part
 * @param {number} end after the last verdict of the part
 * @param {import("./proof-lines.d.mts").Ed25519Signer | null} signer signs the proofs; null: lines
 *   without proofs
 * @returns {Buffer} the lines, each ending in "\n", in a buffer of their own (transferable)
 */
export function encodeLines(batch, start, end, signer) {
  const { common, verdicts } = batch;
  const { subjects, subs, outcomes, lists, reasons, unavailable, departments, quotas } = verdicts;
  // Claims in ProofClaims order: iss sub policy policyVersion on outcome reasons unavailable
  // [quota] departments desk purpose [caseId] iat exp.
  const claimsHead = `{"iss":${json(common.iss)},"sub":`;
  const claimsPolicy = `,"policy":${json(common.policy)},"policyVersion":${json(common.policyVersion)},"on":${json(common.on)},"outcome":`;
  const claimsTail = `,"desk":${json(common.desk)},"purpose":${json(common.purpose)}${common.caseId ? `,"caseId":${json(common.caseId)}` : ""},"iat":${json(common.iat)},"exp":${json(common.exp)}}`;
  const proofHead = signer ? `,"proof":"${batch.header}.` : "";
  // Subjects aside, is everything ASCII (the usual case)? The issuer too: PROOF_ISSUER may be
  // a name in Chinese, which latin1 would write as other bytes than the claims say.
  const commonEncoding = encodingOf(claimsHead + claimsPolicy + claimsTail);
  // The header segment and its dot, before the payload segment: the start of the signing input.
  const proofInput = batch.header.length + 1;

  let out = Buffer.allocUnsafeSlow(Math.max(1024, (end - start) * (signer ? 1024 : 160)));
  let at = 0;
  /** Makes room for `bytes` more bytes. */
  const room = (bytes) => {
    if (at + bytes <= out.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(out.length * 2, at + bytes));
    out.copy(bigger, 0, 0, at);
    out = bigger;
  };
  // The claims are encoded in this scratch buffer, and base64url from there.
  let scratch = Buffer.allocUnsafeSlow(2048);

  for (let index = start; index < end; index++) {
    const subject = subjects[index];
    const outcome = json(outcomes[index]);
    const reasonList = lists[reasons[index]];
    const unavailableList = lists[unavailable[index]];
    const quota =
      quotas === null || Number.isNaN(quotas[index]) ? "" : `,"quota":${json(quotas[index])}`;
    const sub = subs === null ? subject : subs[index];
    const encoding =
      commonEncoding === "latin1" && encodingOf(subject) === "latin1" && encodingOf(sub) === "latin1"
        ? "latin1"
        : "utf8";
    const head = `{"subject":${json(subject)},"outcome":${outcome},"reasons":${reasonList},"unavailable":${unavailableList}${quota}`;
    if (!signer) {
      const line = `${head}}\n`;
      room(most(line));
      at += out.write(line, at, encoding);
      continue;
    }
    const claims = `${claimsHead}${json(sub)}${claimsPolicy}${outcome},"reasons":${reasonList},"unavailable":${unavailableList}${quota},"departments":${lists[departments[index]]}${claimsTail}`;
    if (most(claims) > scratch.length) scratch = Buffer.allocUnsafeSlow(most(claims));
    const payload = scratch.toString("base64url", 0, scratch.write(claims, 0, encoding));
    // The signing input (`header.payload`) is signed where it lies in the output.
    const text = `${head}${proofHead}${payload}`;
    room(most(text) + 128);
    at += out.write(text, at, encoding);
    // (A signer may reuse its signature buffer: it is encoded at once.)
    const signature = signer.sign(out.subarray(at - payload.length - proofInput, at));
    at += out.write(`.${signature.toString("base64url")}"}\n`, at, "latin1");
  }
  return at === out.length ? out : Buffer.from(out.buffer, 0, at);
}
