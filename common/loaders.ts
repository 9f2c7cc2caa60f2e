/**
 * Per-request batching. Every entity and fact is loaded through a DataLoader whose batch function
 * runs one SQL statement for the whole batch; facts that take arguments get one loader per
 * distinct argument set, so `hasValidDriverLicense(on: "2026-11-01")` for 1,000 people is still
 * one statement.
 */
import DataLoader from "dataloader";

/** Groups rows by a key, keeping the order of `keys` (a DataLoader batch contract). */
export function groupRows<K, R>(
  keys: readonly K[],
  rows: readonly R[],
  keyOf: (row: R) => K,
): R[][] {
  const groups = new Map<K, R[]>();
  for (const key of keys) groups.set(key, []);
  for (const row of rows) groups.get(keyOf(row))?.push(row);
  return keys.map((key) => groups.get(key) ?? []);
}

/** One value per key from rows keyed by `keyOf`, `fallback` where no row matched. */
export function valueByKey<K, R, V>(
  keys: readonly K[],
  rows: readonly R[],
  keyOf: (row: R) => K,
  pick: (row: R) => V,
  fallback: V,
): V[] {
  const byKey = new Map<K, V>();
  for (const row of rows) byKey.set(keyOf(row), pick(row));
  return keys.map((key) => (byKey.has(key) ? (byKey.get(key) as V) : fallback));
}

/**
 * The identity of an argument set: flat objects of primitives (every loader's arguments), written
 * out in property order. Resolvers build their argument objects in a fixed order, so equal sets
 * give equal keys; this runs once per entity and field, where JSON.stringify cost a measurable
 * share of a batch.
 */
function argumentKey(args: Readonly<Record<string, unknown>>): string {
  let key = "";
  for (const name in args) {
    const value = args[name];
    // Strings as they are; anything else tagged with its type, so "5" and 5, "null" and null differ.
    const text =
      typeof value === "string"
        ? value
        : `\u0003${typeof value}:${typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)}`;
    key += `${name}\u0001${text}\u0002`;
  }
  return key;
}

/** A request's loaders, created on first use and keyed by fact name and arguments. */
export class RequestLoaders {
  private readonly loaders = new Map<string, Map<string, DataLoader<string, unknown>>>();

  load<V>(
    name: string,
    args: Readonly<Record<string, unknown>>,
    key: string,
    batch: (keys: readonly string[]) => V[],
  ): Promise<V> {
    let byArguments = this.loaders.get(name);
    if (!byArguments) {
      byArguments = new Map();
      this.loaders.set(name, byArguments);
    }
    const id = argumentKey(args);
    let loader = byArguments.get(id) as DataLoader<string, V> | undefined;
    if (!loader) {
      // Batch functions are synchronous SQLite calls; DataLoader only needs a promise around them.
      loader = new DataLoader<string, V>(async (keys) => batch(keys), { maxBatchSize: 5000 });
      byArguments.set(id, loader as DataLoader<string, unknown>);
    }
    return loader.load(key);
  }
}
