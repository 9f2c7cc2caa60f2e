/**
 * One SQLite file per department. Tables are declared once with drizzle; the DDL is derived from
 * those declarations so that the schema cannot drift from the code that queries it.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { getTableColumns, type Placeholder, type SQL, sql } from "drizzle-orm";
import { type BetterSQLite3Database, drizzle } from "drizzle-orm/better-sqlite3";
import { getTableConfig, type SQLiteColumn, type SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Department } from "./departments.ts";

export type Sqlite = Database.Database;
export type Drizzle = BetterSQLite3Database;

export function dataDir(): string {
  return process.env.DATA_DIR ?? "./data";
}

export function databasePath(department: Department, dir = dataDir()): string {
  return join(dir, `${department}.db`);
}

/** Present while `npm run seed` writes a directory: an interrupted seed leaves it behind. */
export function seedingMarker(dir: string): string {
  return join(dir, ".seeding");
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `CREATE TABLE IF NOT EXISTS` (and its indexes) for a drizzle table declaration. */
export function createTableStatements(table: SQLiteTable): string[] {
  const config = getTableConfig(table);
  const columns = config.columns.map((column) => {
    const parts = [quote(column.name), column.getSQLType()];
    if (column.primary) parts.push("PRIMARY KEY");
    if (column.notNull && !column.primary) parts.push("NOT NULL");
    return parts.join(" ");
  });
  for (const pk of config.primaryKeys) {
    columns.push(`PRIMARY KEY (${pk.columns.map((c) => quote(c.name)).join(", ")})`);
  }
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${quote(config.name)} (${columns.join(", ")})${
      config.primaryKeys.length > 0 ? " WITHOUT ROWID" : ""
    }`,
  ];
  for (const index of config.indexes) {
    const { name, columns: indexed, unique } = index.config;
    const names = indexed.map((c) => quote((c as SQLiteColumn).name)).join(", ");
    statements.push(
      `CREATE ${unique ? "UNIQUE " : ""}INDEX IF NOT EXISTS ${quote(name)} ON ${quote(config.name)} (${names})`,
    );
  }
  return statements;
}

/**
 * Drops the indexes of `tables` that their declarations no longer name (an index replaced by a
 * wider one in a later version): the declarations are the schema, and an index nobody queries
 * still costs every import a B-tree to maintain. SQLite's own indexes (primary keys, UNIQUE)
 * have no SQL text and are never touched.
 */
function dropUndeclaredIndexes(sqlite: Sqlite, tables: readonly SQLiteTable[]): void {
  const declared = new Map<string, Set<string>>();
  for (const table of tables) {
    const config = getTableConfig(table);
    declared.set(config.name, new Set(config.indexes.map((index) => index.config.name)));
  }
  const present = sqlite
    .prepare(
      "SELECT name, tbl_name AS tableName FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .all() as Array<{ name: string; tableName: string }>;
  for (const { name, tableName } of present) {
    if (declared.get(tableName)?.has(name) === false)
      sqlite.exec(`DROP INDEX IF EXISTS ${quote(name)}`);
  }
}

/** The primary key's columns a table declares (a composite key, or one column's own). */
function declaredPrimaryKey(table: SQLiteTable): string[] {
  const config = getTableConfig(table);
  const composite = config.primaryKeys[0];
  if (composite) return composite.columns.map((column) => column.name);
  return config.columns.filter((column) => column.primary).map((column) => column.name);
}

/**
 * Rebuilds the tables of `tables` whose file holds another primary key than the declaration
 * (a natural key widened in a later version: tax payments keyed by their payment date too), the
 * rows copied over in one transaction. A table keeps its rows; only the key that decides when an
 * import updates rather than adds changes.
 */
function rebuildChangedPrimaryKeys(sqlite: Sqlite, tables: readonly SQLiteTable[]): void {
  for (const table of tables) {
    const { name, columns } = getTableConfig(table);
    const present = sqlite.prepare(`PRAGMA table_info(${quote(name)})`).all() as Array<{
      name: string;
      pk: number;
    }>;
    if (present.length === 0) continue;
    const key = present
      .filter((column) => column.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((column) => column.name);
    const declared = declaredPrimaryKey(table);
    if (key.join("\u0000") === declared.join("\u0000")) continue;
    const old = `${name}__before_key_change`;
    const copied = columns
      .map((column) => column.name)
      .filter((column) => present.some((existing) => existing.name === column))
      .map(quote)
      .join(", ");
    const [createTable, ...createIndexes] = createTableStatements(table) as [string, ...string[]];
    sqlite.transaction(() => {
      sqlite.exec(`ALTER TABLE ${quote(name)} RENAME TO ${quote(old)}`);
      sqlite.exec(createTable);
      sqlite.exec(
        `INSERT OR REPLACE INTO ${quote(name)} (${copied}) SELECT ${copied} FROM ${quote(old)}`,
      );
      // The old table's indexes kept their names and go with it; then the declared ones are made.
      sqlite.exec(`DROP TABLE ${quote(old)}`);
      for (const statement of createIndexes) sqlite.exec(statement);
    })();
  }
}

export interface DepartmentDatabase {
  sqlite: Sqlite;
  db: Drizzle;
  path: string;
  close(): void;
}

/**
 * Opens (creating when absent) a department's database with settings for a read-mostly service:
 * WAL so that an import can run while the subgraph serves, NORMAL sync (safe in WAL mode: a crash
 * loses at most the last transactions, never corrupts), memory-mapped reads and a larger cache.
 */
export function openDepartmentDatabase(
  department: Department,
  tables: readonly SQLiteTable[],
  options: { dir?: string; readonly?: boolean } = {},
): DepartmentDatabase {
  const dir = options.dir ?? dataDir();
  mkdirSync(dir, { recursive: true });
  const path = databasePath(department, dir);
  let sqlite: Sqlite;
  try {
    sqlite = new Database(path);
    sqlite.pragma("journal_mode = WAL");
  } catch (error) {
    // "unable to open database file", "file is not a database": which file, for the operator.
    const { message, code } = error as Error & { code?: string };
    throw Object.assign(new Error(`${path}: ${message}`, { cause: error }), { code });
  }
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("mmap_size = 268435456");
  sqlite.pragma("cache_size = -65536");
  sqlite.pragma("temp_store = MEMORY");
  sqlite.pragma("busy_timeout = 5000");
  rebuildChangedPrimaryKeys(sqlite, tables);
  // Before creating: the pages of a dropped index are reused by the one replacing it.
  dropUndeclaredIndexes(sqlite, tables);
  for (const table of tables) {
    for (const statement of createTableStatements(table)) sqlite.exec(statement);
  }
  // Planner statistics, as SQLite advises for long-lived connections: without them it probes a
  // table's primary key even where a covering index answers from one B-tree (hukou's person
  // lookup: 2.6 → 1.6 µs per key). A sample of rows per index (analysis_limit) keeps it to
  // milliseconds on an existing file; `optimize` analyses only what lacks or outgrew its stats.
  sqlite.pragma("analysis_limit = 1000");
  sqlite.pragma("optimize = 0x10002");
  return {
    sqlite,
    db: drizzle(sqlite),
    path,
    close: () => {
      // After an import: statistics for the rows it wrote.
      if (sqlite.open && !sqlite.readonly) sqlite.pragma("optimize");
      sqlite.close();
    },
  };
}

/**
 * One JSON array holding `expression` for each key of a `keyBatch`, in batch order: a fact over
 * a batch comes back as one row instead of one per key. better-sqlite3 spends ~0.6 µs on each
 * row it returns and ~0.15 µs on each value; SQLite writing the JSON text and `JSON.parse`
 * reading it cost a fraction of that (hasValidDriverLicense for 1,000 persons: 3.3 → 2.2 ms).
 *
 * Batch order holds because the key batch is the statement's only table, or the left side of a
 * LEFT JOIN, so SQLite walks it outermost and aggregates rows as it walks (pinned by
 * `test/subgraphs/batch-order.test.ts`).
 */
export function jsonPerKey(expression: SQL): SQL<string> {
  return sql<string>`json_group_array(${expression})`;
}

/** The values of a `jsonPerKey` column, checked to hold one per key. */
export function perKeyValues<V>(rows: readonly (readonly unknown[])[], keys: number): V[] {
  const text = rows[0]?.[0];
  const values = typeof text === "string" ? (JSON.parse(text) as V[]) : [];
  if (values.length !== keys) {
    throw new Error(`a batch statement answered ${values.length} values for ${keys} keys`);
  }
  return values;
}

/**
 * `column IN (…)` for a whole batch bound as one JSON array parameter, so that one prepared
 * statement serves every batch size (no statement per distinct number of placeholders).
 */
export function inJsonArray(column: SQLiteColumn, placeholder: Placeholder): SQL {
  return sql`${column} IN (SELECT value FROM json_each(${placeholder}))`;
}

/**
 * A batch of keys, bound as one JSON array parameter, as a table `batch` to select from: one row
 * per key, `batchIndex` its position in the batch and `batchKey` the key. Joining a table to it
 * (or asking a correlated subquery per row) probes the table's index once per key in batch order,
 * without the sorted temporary index that `IN (SELECT …)` builds, and each result row carries the
 * position it answers, so no map from keys to rows is needed.
 */
export function keyBatch(keysPlaceholder: Placeholder): SQL {
  return sql`json_each(${keysPlaceholder}) AS batch`;
}
/** The position of a key in its `keyBatch` (0-based). */
export const batchIndex = sql<number>`batch.key`;
/** The key itself in a `keyBatch`. */
export const batchKey = sql<string>`batch.value`;

/** `column` lies in the region `within` (a province, city or county code; see regionPrefix). */
export function inRegion(column: SQLiteColumn, prefixPlaceholder: Placeholder): SQL {
  return sql`substr(${column}, 1, length(${prefixPlaceholder})) = ${prefixPlaceholder}`;
}

/** Which dated payments count towards a fact: where they were made and by when. */
export interface PaymentFilter {
  /** Region code prefix (see `regionPrefix`); `""` is everywhere. */
  prefix: string;
  /** Only payments made on or before this day; null counts every payment. */
  paidBy: string | null;
}

/** Later than any real payment date: "no paidBy" compares like a day after every payment. */
export const NO_PAYMENT_LIMIT = "9999-12-31";

/**
 * The `set` of an import upsert: every column but the natural key takes the incoming row's value
 * (`excluded.<column>`). Derived from the table declaration, like the DDL, so a new column is
 * never silently left out of re-imports.
 */
export function replaceAllButKey(
  table: SQLiteTable,
  key: SQLiteColumn | readonly SQLiteColumn[],
): Record<string, SQL> {
  const keyNames = new Set((Array.isArray(key) ? key : [key]).map((column) => column.name));
  const set: Record<string, SQL> = {};
  for (const [property, column] of Object.entries(getTableColumns(table))) {
    if (!keyNames.has(column.name)) set[property] = sql.raw(`excluded.${quote(column.name)}`);
  }
  return set;
}
