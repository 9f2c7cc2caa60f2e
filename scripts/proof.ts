/**
 * `npm run proof -- verify <proof-or-file> [--jwks URL|FILE]`: checks a verdict proof and prints
 * its claims; exits 1 when any byte was altered, the proof expired or its key is not published.
 * The keys come from `--jwks` (a gateway's `/.well-known/jwks.json`, or a saved copy to check
 * offline), else from the local key store, else from the gateway of `GATEWAY_URL` (by default
 * the local one); exits 2 when they cannot be read, which says nothing about the proof.
 *
 * `npm run proof -- rotate`: a new signing key in the development key store (`DATA_DIR/keys`);
 * running gateways sign with it within seconds, and keep publishing the old one until its proofs
 * have expired. `npm run proof -- jwks`: prints the published keys of the local store.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { JSONWebKeySet } from "jose";
import { dataDir } from "../common/sqlite.ts";
import { verificationConfigFromEnv } from "../gateway/verification/config.ts";
import { ProofKeys } from "../gateway/verification/keys.ts";
import { verifyProof } from "../gateway/verification/proofs.ts";

const USAGE = `usage:
  npm run proof -- verify <proof | file> [--jwks URL|FILE]   check a proof, print its claims
  npm run proof -- rotate                                    new signing key (development key store)
  npm run proof -- jwks                                      print the published public keys
A file may hold the proof itself or a result line of npm run verify ({"proof": ...}).`;

function localKeys(): ProofKeys {
  const config = verificationConfigFromEnv(dataDir());
  return new ProofKeys({ ...config, production: false });
}

/** The proof in the argument: the token itself, a file holding it, or a result line holding it. */
function readProof(argument: string): string {
  let text = argument;
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(argument.trim()) && existsSync(argument)) {
    text = readFileSync(argument, "utf8");
  }
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const proof = (JSON.parse(trimmed.split("\n")[0] as string) as { proof?: unknown }).proof;
    if (typeof proof !== "string") throw new Error("the JSON holds no proof");
    return proof;
  }
  return trimmed;
}

/** A key set, fetched or read from a file: null (said why) when it cannot be had. */
async function readKeys(source: string, given: boolean): Promise<JSONWebKeySet | null> {
  try {
    let set: JSONWebKeySet;
    if (/^https?:\/\//.test(source)) {
      const response = await fetch(source, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      set = (await response.json()) as JSONWebKeySet;
    } else {
      set = JSON.parse(readFileSync(source, "utf8")) as JSONWebKeySet;
    }
    if (!Array.isArray(set?.keys)) throw new Error("not a JSON Web Key Set");
    return set;
  } catch (error) {
    const reason = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    const advice = given ? "" : "; give --jwks URL|FILE, or run where DATA_DIR holds the key store";
    console.error(
      `proof: cannot check: the keys could not be read from ${source} (${reason})${advice}`,
    );
    return null;
  }
}

async function verify(argument: string, jwks: string | undefined): Promise<number> {
  const config = verificationConfigFromEnv(dataDir());
  let keys: JSONWebKeySet | null;
  let source: string;
  if (jwks) {
    source = jwks;
    keys = await readKeys(jwks, true);
  } else if (existsSync(config.keysDir)) {
    source = `the key store ${config.keysDir}`;
    keys = { keys: localKeys().publishedKeys() as never };
  } else {
    // The gateway's, where GATEWAY_URL says (as for npm run verify), by default the local one.
    const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:4000/graphql";
    if (!URL.canParse(gateway)) {
      console.error(`proof: cannot check: GATEWAY_URL is not a URL: "${gateway}"`);
      return 2;
    }
    source = new URL("/.well-known/jwks.json", gateway).toString();
    keys = await readKeys(source, false);
  }
  // Keys that cannot be had say nothing about the proof: not "invalid" (1), but unchecked (2).
  if (!keys) return 2;
  const check = await verifyProof(readProof(argument), keys);
  if (!check.valid) {
    console.error(`INVALID proof (${check.problem}): ${check.message}\nkeys from ${source}`);
    return 1;
  }
  console.log(
    `valid proof, signed by key ${String(check.header.kid)} (keys from ${source})\n${JSON.stringify(check.claims, null, 2)}`,
  );
  const { iat, exp } = check.claims;
  console.log(
    `issued ${new Date(iat * 1000).toISOString()}, expires ${new Date(exp * 1000).toISOString()}`,
  );
  return 0;
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine();
  } catch (error) {
    // An unknown option is a wrong usage (2), like an unknown command.
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  const [command, argument] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  switch (command) {
    case "verify":
      if (!argument) {
        console.error(USAGE);
        return 2;
      }
      return verify(argument, values.jwks);
    case "rotate": {
      const kid = localKeys().rotate();
      console.log(`new signing key ${kid} in ${verificationConfigFromEnv(dataDir()).keysDir}`);
      return 0;
    }
    case "jwks":
      console.log(JSON.stringify({ keys: localKeys().publishedKeys() }, null, 2));
      return 0;
    default:
      console.error(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

function parseCommandLine() {
  return parseArgs({
    allowPositionals: true,
    options: { jwks: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
  });
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`proof: ${(error as Error).message}`);
  process.exitCode = 1;
}
