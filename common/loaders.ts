/**
 * Per-request batching. Every entity and fact is loaded by a batch function that runs one SQL
 * statement for a whole batch of keys; facts that take arguments are batched per distinct argument
 * set, so `hasValidDriverLicense(on: "2026-11-01")` for 1,000 people is still one statement.
 *
 * A request names its subjects up front: the ids of `people(ids:)`, the keys of the
 * representations of `_entities`. The first time a fact is asked for one of them, it is loaded
 * for all of them at once and answered synchronously (SQLite calls are synchronous), so a batch of
 * 1,000 entities costs neither a promise nor a DataLoader entry per entity and field. Keys that
 * are not subjects (nested objects, such as a spouse) still go through a DataLoader, which
 * batches what the rest of the request asks for in the same tick.
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

/** Rows `[index, …]` grouped by the key position `index`, in the order of the batch. */
export function groupByIndex<R extends readonly unknown[]>(
  count: number,
  rows: readonly R[],
): R[][] {
  const groups: R[][] = Array.from({ length: count }, () => []);
  for (const row of rows) groups[row[0] as number]?.push(row);
  return groups;
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

/** A value, or a promise of one where a key had to wait for a DataLoader batch. */
export type Loaded<V> = V | Promise<V>;

/** Applies `f` to a loaded value without a promise when the value is already there. */
export function whenLoaded<V, W>(value: Loaded<V>, f: (value: V) => W): Loaded<W> {
  return value instanceof Promise ? value.then(f) : f(value);
}

type Batch<V> = (keys: readonly string[]) => V[];

/** One fact under one argument set: the values loaded so far and how far the subjects were read. */
interface Fact<V> {
  values: Map<string, V>;
  /** Failures of synchronous batches, so each key of a failed batch fails as DataLoader's would. */
  failures: Map<string, unknown> | null;
  /** Subjects before this index have been loaded (or have failed). */
  subjectsDone: number;
  loader: DataLoader<string, V> | null;
}

/** The facts of one name, by argument set, and the argument set asked for last. */
interface FactsOfName {
  last: { args: Readonly<Record<string, unknown>>; fact: Fact<unknown> } | null;
  byArguments: Map<string, Fact<unknown>>;
}

/** Whether two argument sets have the same names with identical values (same key). */
function sameArguments(
  a: Readonly<Record<string, unknown>>,
  b: Readonly<Record<string, unknown>>,
): boolean {
  if (a === b) return true;
  let names = 0;
  for (const name in b) {
    if (!(name in a) || !Object.is(a[name], b[name])) return false;
    names++;
  }
  for (const _ in a) names--;
  return names === 0;
}

/** A request's loaders, created on first use and keyed by fact name and arguments. */
export class RequestLoaders {
  private readonly facts = new Map<string, FactsOfName>();
  private readonly subjectList: string[] = [];
  private readonly subjectSet = new Set<string>();
  private memo: WeakMap<object, unknown> | null = null;
  /** The arguments `argumentsOf` saw last per field, and what they prepared. */
  private prepared: Map<
    string,
    { args: Readonly<Record<string, unknown>>; value: unknown }
  > | null = null;

  /**
   * Declares keys the request asks about (a root list field's ids, `_entities` keys), so that any
   * fact asked for one of them is loaded for all of them in one statement.
   */
  addSubjects(keys: readonly string[]): void {
    for (const key of keys) this.addSubject(key);
  }

  addSubject(key: string): void {
    if (this.subjectSet.has(key)) return;
    this.subjectSet.add(key);
    this.subjectList.push(key);
  }

  /**
   * The value of fact `name` with `args` for `key`, from `batch` (one value per key, in order).
   * Synchronous for a subject of the request; a promise (batched with the other keys asked in the
   * same tick) otherwise.
   */
  load<V>(
    name: string,
    args: Readonly<Record<string, unknown>>,
    key: string,
    batch: Batch<V>,
  ): Loaded<V> {
    const fact = this.fact<V>(name, args);
    const known = fact.values.get(key);
    if (known !== undefined || fact.values.has(key)) return known as V;
    if (this.subjectSet.has(key)) {
      if (fact.failures?.has(key)) throw fact.failures.get(key);
      this.loadSubjects(fact, batch);
      const loaded = fact.values.get(key);
      if (loaded !== undefined || fact.values.has(key)) return loaded as V;
      if (fact.failures?.has(key)) throw fact.failures.get(key);
    }
    if (!fact.loader) {
      // Batch functions are synchronous SQLite calls; DataLoader only needs a promise around them.
      fact.loader = new DataLoader<string, V>(async (keys) => batch(keys), { maxBatchSize: 5000 });
    }
    return fact.loader.load(key);
  }

  /**
   * The fact for every key, in order: the keys become subjects of the request first, so the
   * whole list is one statement, answered synchronously.
   */
  loadAll<V>(
    name: string,
    args: Readonly<Record<string, unknown>>,
    keys: readonly string[],
    batch: Batch<V>,
  ): V[] {
    this.addSubjects(keys);
    const fact = this.fact<V>(name, args);
    if (fact.subjectsDone < this.subjectList.length) this.loadSubjects(fact, batch);
    return keys.map((key) => {
      const value = fact.values.get(key);
      if (value !== undefined || fact.values.has(key)) return value as V;
      // Only a key whose earlier synchronous batch failed is missing: fail as that batch did.
      throw fact.failures?.get(key);
    });
  }

  /**
   * `prepare(args)` once per request and distinct argument set of `field`: every entity of a
   * batch asks a fact with equal arguments (graphql-jit hands each its own object), so the checks
   * of those arguments and the filter they make run once, and every entity then passes the same
   * filter object, which `load` recognises by identity. A `prepare` that throws (bad input) is
   * not remembered: each entity fails as it would have.
   */
  argumentsOf<A extends Readonly<Record<string, unknown>>, F>(
    field: string,
    args: A,
    prepare: (args: A) => F,
  ): F {
    this.prepared ??= new Map();
    const last = this.prepared.get(field);
    if (last !== undefined && sameArguments(last.args, args)) return last.value as F;
    const value = prepare(args);
    this.prepared.set(field, { args, value });
    return value;
  }

  /**
   * `compute()` once per request for the same input object: a root field asked twice with the
   * same `$ids` (two aliases, as the gateway's query plans do) gets the same list back.
   */
  once<T>(input: object, compute: () => T): T {
    this.memo ??= new WeakMap();
    if (this.memo.has(input)) return this.memo.get(input) as T;
    const value = compute();
    this.memo.set(input, value);
    return value;
  }

  private fact<V>(name: string, args: Readonly<Record<string, unknown>>): Fact<V> {
    let facts = this.facts.get(name);
    if (!facts) {
      facts = { last: null, byArguments: new Map() };
      this.facts.set(name, facts);
    }
    // Every entity of a batch asks with the same arguments: compare them with the last ones
    // before writing out a key.
    const last = facts.last;
    if (last !== null && sameArguments(last.args, args)) return last.fact as Fact<V>;
    const id = argumentKey(args);
    let fact = facts.byArguments.get(id) as Fact<V> | undefined;
    if (!fact) {
      fact = { values: new Map(), failures: null, subjectsDone: 0, loader: null };
      facts.byArguments.set(id, fact as Fact<unknown>);
    }
    facts.last = { args, fact: fact as Fact<unknown> };
    return fact;
  }

  /** Loads the fact for every subject declared since the last time it was loaded. */
  private loadSubjects<V>(fact: Fact<V>, batch: Batch<V>): void {
    const pending = this.subjectList
      .slice(fact.subjectsDone)
      .filter((subject) => !fact.values.has(subject));
    fact.subjectsDone = this.subjectList.length;
    if (pending.length === 0) return;
    let values: V[];
    try {
      values = batch(pending);
    } catch (error) {
      fact.failures ??= new Map();
      for (const subject of pending) fact.failures.set(subject, error);
      throw error;
    }
    for (let index = 0; index < pending.length; index++) {
      fact.values.set(pending[index] as string, values[index] as V);
    }
  }
}
