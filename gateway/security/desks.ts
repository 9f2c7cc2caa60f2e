/**
 * The desk registry (`DESKS_FILE`): which service desks may call the gateway, with which keys,
 * for which purposes, each purpose granting a set of scopes under a stated legal basis.
 *
 * Keys are stored as `sha256:<hex>` of the key, never the key itself: desk keys are long random
 * tokens, so a fast hash is enough, and a leaked registry does not let anyone call the gateway.
 */
import { hash } from "node:crypto";
import { readFileSync } from "node:fs";
import { MIN_WINDOW_MS } from "../config.ts";
import type { Principal } from "../principal.ts";

export interface Purpose {
  code: string;
  legalBasis: string;
  scopes: readonly string[];
}

export interface Desk {
  id: string;
  name: string;
  /** A development desk with a published key: refused in production. */
  demo: boolean;
  keyHashes: readonly string[];
  purposes: ReadonlyMap<string, Purpose>;
  /** Requests per window; the gateway's default when absent. */
  rateLimit: { max: number; windowMs: number } | null;
  /** The most one request's estimated cost may be; the gateway's `MAX_COST` when absent. */
  maxCost: number | null;
  /** When true the desk may only run registered (persisted) operation documents. */
  persistedOperationsOnly: boolean;
}

/** The published development keys: a desk holding one is a demo desk, whatever its file says. */
const DEMO_KEY_HASHES = new Set([hashKey("dev-desk-key"), hashKey("dev-lottery-key")]);

export function hashKey(key: string): string {
  return hash("sha256", key, "hex");
}

class DeskFileError extends Error {}

function fail(file: string, where: string, problem: string): never {
  throw new DeskFileError(`${file}: ${where}: ${problem}`);
}

function text(file: string, where: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "")
    fail(file, where, "must be a non-empty string");
  return value;
}

/**
 * An object with these keys only (and `$comment`): a misspelt key (`persistedOperationOnly`,
 * `ratelimit`) would otherwise be ignored, leaving the desk without what its operator wrote.
 */
function object(
  file: string,
  where: string,
  raw: unknown,
  keys: readonly string[],
): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    fail(file, where, "must be an object");
  }
  for (const key of Object.keys(raw)) {
    if (key !== "$comment" && !keys.includes(key)) {
      fail(file, `${where}.${key}`, `is not a setting (expected ${keys.join(", ")})`);
    }
  }
  return raw as Record<string, unknown>;
}

function optionalBoolean(file: string, where: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") fail(file, where, "must be true or false");
  return value;
}

/** Desk ids and scopes: plain names (no spaces, no look-alike letters in an audit log). */
const DESK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SCOPE = /^(\*|[a-z0-9][a-z0-9._:/-]{0,127})$/;

function readPurpose(file: string, where: string, raw: unknown): Purpose {
  const purpose = object(file, where, raw, ["code", "legalBasis", "scopes"]);
  const code = text(file, `${where}.code`, purpose.code);
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(code)) {
    fail(file, `${where}.code`, "must be lower-case letters, digits, '.', '_' or '-'");
  }
  const scopes = purpose.scopes;
  if (!Array.isArray(scopes) || scopes.length === 0) {
    fail(file, `${where}.scopes`, "must list at least one scope");
  }
  return {
    code,
    legalBasis: text(file, `${where}.legalBasis`, purpose.legalBasis),
    scopes: scopes.map((scope, index) => {
      const name = text(file, `${where}.scopes[${index}]`, scope);
      if (!SCOPE.test(name)) {
        fail(file, `${where}.scopes[${index}]`, `"${name}" is not a scope name`);
      }
      return name;
    }),
  };
}

function readDesk(file: string, index: number, raw: unknown): Desk {
  const where = `desks[${index}]`;
  const desk = object(file, where, raw, [
    "id",
    "name",
    "demo",
    "keys",
    "purposes",
    "rateLimit",
    "maxCost",
    "persistedOperationsOnly",
  ]);
  const id = text(file, `${where}.id`, desk.id);
  if (!DESK_ID.test(id)) {
    fail(file, `${where}.id`, "must be letters, digits, '.', '_' or '-' (at most 64)");
  }
  const keys = desk.keys;
  if (!Array.isArray(keys))
    fail(file, `${where}.keys`, "must be a list of sha256:<hex> key hashes");
  const keyHashes = keys.map((key, k) => {
    const match = /^sha256:([0-9a-f]{64})$/.exec(String(key));
    if (!match)
      fail(file, `${where}.keys[${k}]`, "must be sha256:<64 hex digits> (the key's hash)");
    return match[1] as string;
  });
  if (!Array.isArray(desk.purposes) || desk.purposes.length === 0) {
    fail(file, `${where}.purposes`, "must list at least one purpose");
  }
  const purposes = new Map<string, Purpose>();
  desk.purposes.forEach((purpose, p) => {
    const read = readPurpose(file, `${where}.purposes[${p}]`, purpose);
    if (purposes.has(read.code))
      fail(file, `${where}.purposes[${p}]`, `duplicate purpose ${read.code}`);
    purposes.set(read.code, read);
  });
  let rateLimit: Desk["rateLimit"] = null;
  if (desk.rateLimit !== undefined) {
    const limit = object(file, `${where}.rateLimit`, desk.rateLimit, ["max", "windowMs"]);
    const { max, windowMs } = limit;
    // A window of 0 (or of a few ms) would switch the limit off; a max of 0 blocks the desk.
    if (
      !Number.isSafeInteger(max) ||
      (max as number) < 0 ||
      !Number.isSafeInteger(windowMs) ||
      (windowMs as number) < MIN_WINDOW_MS
    ) {
      fail(
        file,
        `${where}.rateLimit`,
        `must be { max: <requests, 0 or more>, windowMs: <milliseconds, ${MIN_WINDOW_MS} or more> }`,
      );
    }
    rateLimit = { max: max as number, windowMs: windowMs as number };
  }
  const { maxCost } = desk;
  if (maxCost !== undefined && (!Number.isSafeInteger(maxCost) || (maxCost as number) < 1)) {
    fail(file, `${where}.maxCost`, "must be a whole number of at least 1 (an operation's cost)");
  }
  return {
    id,
    name: text(file, `${where}.name`, desk.name),
    demo:
      optionalBoolean(file, `${where}.demo`, desk.demo) ||
      keyHashes.some((hash) => DEMO_KEY_HASHES.has(hash)),
    keyHashes,
    purposes,
    rateLimit,
    maxCost: (maxCost as number | undefined) ?? null,
    persistedOperationsOnly: optionalBoolean(
      file,
      `${where}.persistedOperationsOnly`,
      desk.persistedOperationsOnly,
    ),
  };
}

export class DeskRegistry {
  private readonly byKeyHash = new Map<string, Desk>();
  private readonly byId = new Map<string, Desk>();
  /** Keys seen recently (valid ones only, so that guessing cannot grow it): no hash per request. */
  private readonly recentKeys = new Map<string, Desk>();
  /** One principal per desk and purpose: requests copy it and add their case id. */
  private readonly principals = new Map<string, Principal>();

  constructor(readonly desks: readonly Desk[]) {
    for (const desk of desks) {
      if (this.byId.has(desk.id)) throw new DeskFileError(`duplicate desk id ${desk.id}`);
      this.byId.set(desk.id, desk);
      for (const hash of desk.keyHashes) {
        if (this.byKeyHash.has(hash)) {
          throw new DeskFileError(
            `desks ${this.byKeyHash.get(hash)?.id} and ${desk.id} share a key`,
          );
        }
        this.byKeyHash.set(hash, desk);
      }
      for (const purpose of desk.purposes.values()) {
        this.principals.set(`${desk.id}\u0000${purpose.code}`, {
          kind: "desk",
          deskId: desk.id,
          deskName: desk.name,
          purpose: purpose.code,
          legalBasis: purpose.legalBasis,
          caseId: null,
          scopes: new Set(purpose.scopes),
          citizenId: null,
        });
      }
    }
  }

  static fromFile(file: string): DeskRegistry {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      throw new DeskFileError(`cannot read the desk registry ${file}: ${(error as Error).message}`);
    }
    const { desks } = object(file, "the file", raw, ["desks"]);
    if (!Array.isArray(desks)) fail(file, "desks", "must be a list");
    return new DeskRegistry(desks.map((desk, index) => readDesk(file, index, desk)));
  }

  byKey(key: string): Desk | undefined {
    const recent = this.recentKeys.get(key);
    if (recent) return recent;
    const desk = this.byKeyHash.get(hashKey(key));
    if (desk) {
      if (this.recentKeys.size >= 1000) this.recentKeys.clear();
      this.recentKeys.set(key, desk);
    }
    return desk;
  }

  desk(id: string): Desk | undefined {
    return this.byId.get(id);
  }

  /** The principal of a desk acting for one of its purposes (shared, do not mutate). */
  principal(desk: Desk, purpose: string): Principal | undefined {
    return this.principals.get(`${desk.id}\u0000${purpose}`);
  }

  get demoDesks(): Desk[] {
    return this.desks.filter((desk) => desk.demo);
  }
}

/**
 * Each scope a purpose grants that is not in `known`, as `desk/purpose: scope`, with the known
 * scopes of the same area (the part before the first `:`) as the likely intended ones.
 */
export function unknownGrants(registry: DeskRegistry, known: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const desk of registry.desks) {
    for (const purpose of desk.purposes.values()) {
      for (const scope of purpose.scopes) {
        if (scope === "*" || known.has(scope)) continue;
        const area = `${scope.split(":")[0]}:`;
        const near = [...known].filter((name) => name.startsWith(area)).sort();
        found.push(
          `${desk.id}/${purpose.code} grants "${scope}"${near.length > 0 ? ` (${area} scopes are ${near.join(", ")})` : ""}`,
        );
      }
    }
  }
  return found;
}
