/**
 * A department's indexes are its table declarations: opening a database made by an earlier
 * version replaces the indexes it no longer declares, keeping the rows, and the traffic facts a
 * lottery batch asks for are answered from their covering indexes alone.
 */
import Database from "better-sqlite3";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterAll, describe, expect, it } from "vitest";
import {
  type DepartmentDatabase,
  databasePath,
  openDepartmentDatabase,
} from "../../common/sqlite.ts";
import { taxWriter } from "../../subgraphs/tax/import.ts";
import { taxTables } from "../../subgraphs/tax/tables.ts";
import { TrafficStore } from "../../subgraphs/traffic/store.ts";
import { trafficTables } from "../../subgraphs/traffic/tables.ts";
import { tempDataDir } from "../helpers.ts";

const data = tempDataDir("mianzheng-indexes-");
afterAll(() => data.remove());

const PERSON = "110101199001011237";

/** A traffic database as the previous version left it: one-column indexes by person and owner. */
function createEarlierTrafficDatabase(): void {
  const sqlite = new Database(databasePath("traffic", data.dir));
  sqlite.exec(`
    CREATE TABLE "driver_license" ("number" text PRIMARY KEY, "person_id" text NOT NULL,
      "class" text NOT NULL, "issued_on" text NOT NULL, "valid_until" text NOT NULL,
      "status" text NOT NULL);
    CREATE INDEX "driver_license_person" ON "driver_license" ("person_id");
    CREATE TABLE "vehicle" ("plate" text NOT NULL, "registered_on" text NOT NULL,
      "owner_id" text NOT NULL, "kind" text NOT NULL, "region" text NOT NULL,
      "deregistered_on" text, PRIMARY KEY ("plate", "registered_on")) WITHOUT ROWID;
    CREATE INDEX "vehicle_owner" ON "vehicle" ("owner_id");
    INSERT INTO driver_license VALUES ('110000000001', '${PERSON}', 'C1', '2015-03-01', '2027-03-01', 'VALID');
    INSERT INTO vehicle VALUES ('京A12345', '2020-05-01', '${PERSON}', 'PASSENGER_CAR', '110105', NULL);
  `);
  sqlite.close();
}

function indexNames(database: DepartmentDatabase): string[] {
  return (
    database.sqlite
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
      .pluck()
      .all() as string[]
  ).sort();
}

/** SQLite's plan for one of the store's prepared statements (drizzle keeps its SQL text). */
function planOf(database: DepartmentDatabase, store: TrafficStore, statement: string): string {
  const prepared = Reflect.get(store, statement) as {
    getQuery(): { sql: string; params: unknown[] };
  };
  const { sql, params } = prepared.getQuery();
  const bound = params.map(() => null);
  return (
    database.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...bound) as Array<{ detail: string }>
  )
    .map((row) => row.detail)
    .join("\n");
}

describe("department primary keys", () => {
  it("rebuilds a table whose earlier key was narrower, keeping its rows, and then adds payments", () => {
    // The tax tables as an earlier version declared them: one row per subject, period and region.
    const sqlite = new Database(databasePath("tax", data.dir));
    sqlite.exec(`
      CREATE TABLE "income_tax" ("person_id" text NOT NULL, "period" text NOT NULL,
        "region" text NOT NULL, "amount" integer NOT NULL, "paid_on" text NOT NULL,
        PRIMARY KEY ("person_id", "period", "region")) WITHOUT ROWID;
      CREATE TABLE "vat" ("uscc" text NOT NULL, "period" text NOT NULL, "region" text NOT NULL,
        "amount" integer NOT NULL, "paid_on" text NOT NULL,
        PRIMARY KEY ("uscc", "period", "region")) WITHOUT ROWID;
      INSERT INTO income_tax VALUES ('${PERSON}', '2025-06', '110105', 10000, '2025-07-10');
    `);
    sqlite.close();
    const database = openDepartmentDatabase("tax", taxTables, { dir: data.dir });
    try {
      const key = (table: string) =>
        (
          database.sqlite.prepare(`PRAGMA table_info(${table})`).all() as Array<{
            name: string;
            pk: number;
          }>
        )
          .filter((column) => column.pk > 0)
          .sort((a, b) => a.pk - b.pk)
          .map((column) => column.name);
      expect(key("income_tax")).toEqual(["person_id", "period", "region", "paid_on"]);
      expect(key("vat")).toEqual(["uscc", "period", "region", "paid_on"]);
      const write = taxWriter(database.db);
      write({
        kind: "incomeTax",
        personId: PERSON,
        period: "2025-06",
        region: "110105",
        amount: 5000,
        paidOn: "2025-09-01",
      } as never);
      expect(
        database.sqlite
          .prepare("SELECT amount, paid_on AS paidOn FROM income_tax ORDER BY paid_on")
          .all(),
      ).toEqual([
        { amount: 10000, paidOn: "2025-07-10" },
        { amount: 5000, paidOn: "2025-09-01" },
      ]);
    } finally {
      database.close();
    }
  });
});

describe("a rebuilt table's indexes", () => {
  it("are the declared ones, made on the new table (the old table's went with it)", () => {
    const dir = tempDataDir("mianzheng-rebuild-");
    try {
      const payments = sqliteTable(
        "payment",
        {
          subject: text("subject").notNull(),
          day: text("day").notNull(),
          amount: integer("amount"),
        },
        (t) => [primaryKey({ columns: [t.subject, t.day] }), index("payment_by_day").on(t.day)],
      );
      const sqlite = new Database(databasePath("civil", dir.dir));
      sqlite.exec(`
        CREATE TABLE "payment" ("subject" text NOT NULL, "day" text NOT NULL, "amount" integer,
          PRIMARY KEY ("subject")) WITHOUT ROWID;
        CREATE INDEX "payment_by_day" ON "payment" ("day");
        INSERT INTO payment VALUES ('a', '2025-01-01', 1);
      `);
      sqlite.close();
      const database = openDepartmentDatabase("civil", [payments], { dir: dir.dir });
      try {
        expect(
          database.sqlite
            .prepare("SELECT tbl_name FROM sqlite_master WHERE name = 'payment_by_day'")
            .pluck()
            .get(),
        ).toBe("payment");
        expect(database.sqlite.prepare("SELECT * FROM payment").all()).toEqual([
          { subject: "a", day: "2025-01-01", amount: 1 },
        ]);
      } finally {
        database.close();
      }
    } finally {
      dir.remove();
    }
  });
});

describe("department indexes", () => {
  it("replaces the indexes an earlier version made and keeps the rows", () => {
    createEarlierTrafficDatabase();
    const database = openDepartmentDatabase("traffic", trafficTables, { dir: data.dir });
    try {
      expect(indexNames(database)).toEqual(["driver_license_validity", "vehicle_holding"]);
      const store = new TrafficStore(database);
      expect(store.hasValidLicense([PERSON, "110101199001011245"], "2026-11-01")).toEqual([
        true,
        false,
      ]);
      expect(
        store.vehicleCounts([PERSON], {
          kind: "PASSENGER_CAR",
          regionPrefix: "11",
          on: "2026-11-01",
        }),
      ).toEqual([1]);
    } finally {
      database.close();
    }
    // Opening again changes nothing.
    const again = openDepartmentDatabase("traffic", trafficTables, { dir: data.dir });
    try {
      expect(indexNames(again)).toEqual(["driver_license_validity", "vehicle_holding"]);
    } finally {
      again.close();
    }
  });

  it("answers the lottery's licence and vehicle facts from covering indexes", () => {
    const database = openDepartmentDatabase("traffic", trafficTables, { dir: data.dir });
    try {
      const store = new TrafficStore(database);
      expect(planOf(database, store, "personsWithValidLicense")).toContain(
        "USING COVERING INDEX driver_license_validity",
      );
      expect(planOf(database, store, "vehicleCountsOfOwners")).toContain(
        "USING COVERING INDEX vehicle_holding",
      );
    } finally {
      database.close();
    }
  });
});
