/**
 * Batch statements answer one row for the whole batch (`jsonPerKey`): a JSON array in the order of
 * the keys. That order is SQLite's walk of the key batch, so it is pinned here against the answer
 * each key gets on its own, over a seeded population, with keys shuffled, repeated and unknown.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Department } from "../../common/departments.ts";
import { makePersonId } from "../../common/ids.ts";
import { openDepartmentDatabase } from "../../common/sqlite.ts";
import { Random, seedPopulation } from "../../scripts/population.ts";
import { HukouStore } from "../../subgraphs/hukou/store.ts";
import { hukouTables } from "../../subgraphs/hukou/tables.ts";
import { SocialStore } from "../../subgraphs/social/store.ts";
import { socialTables } from "../../subgraphs/social/tables.ts";
import { TaxStore } from "../../subgraphs/tax/store.ts";
import { taxTables } from "../../subgraphs/tax/tables.ts";
import { TrafficStore } from "../../subgraphs/traffic/store.ts";
import { trafficTables } from "../../subgraphs/traffic/tables.ts";
import { tempDataDir } from "../helpers.ts";

const AS_OF = "2026-11-01";
const data = tempDataDir("mianzheng-batch-order-");
const opened: Array<ReturnType<typeof openDepartmentDatabase>> = [];
let keys: string[] = [];
let hukou: HukouStore;
let social: SocialStore;
let tax: TaxStore;
let traffic: TrafficStore;

function open(department: Department, tables: Parameters<typeof openDepartmentDatabase>[1]) {
  const database = openDepartmentDatabase(department, tables, { dir: data.dir });
  opened.push(database);
  return database;
}

beforeAll(() => {
  const summary = seedPopulation({ persons: 3_000, seed: 11, asOf: AS_OF, dir: data.dir });
  hukou = new HukouStore(open("hukou", hukouTables));
  social = new SocialStore(open("social", socialTables));
  tax = new TaxStore(open("tax", taxTables));
  traffic = new TrafficStore(open("traffic", trafficTables));
  const ids = (opened[0] as ReturnType<typeof openDepartmentDatabase>).sqlite
    .prepare("SELECT id FROM person ORDER BY id")
    .pluck()
    .all() as string[];
  expect(ids.length).toBe(summary.persons);
  // Shuffled, with persons the registers do not know and a few asked twice.
  const random = new Random(5);
  const picked = ids.filter(() => random.float() < 0.3);
  const unknown = Array.from({ length: 40 }, (_, i) =>
    makePersonId(
      "650102",
      `19${String(10 + (i % 80)).padStart(2, "0")}-01-0${1 + (i % 9)}`,
      i % 900,
    ),
  );
  keys = [...picked, ...unknown, ...picked.slice(0, 25)]
    .map((key) => ({ key, order: random.float() }))
    .sort((a, b) => a.order - b.order)
    .map((entry) => entry.key);
});

afterAll(() => {
  for (const database of opened) database.close();
  data.remove();
});

/** The batch answer, and each key's answer asked on its own. */
function batchAndSingles<V>(fact: (batch: readonly string[]) => V[]): { batch: V[]; singles: V[] } {
  return { batch: fact(keys), singles: keys.map((key) => fact([key])[0] as V) };
}

describe("one-row batch statements answer in the order of the keys", () => {
  it("hukou: persons, with null for the unknown", () => {
    const { batch, singles } = batchAndSingles((k) => hukou.persons(k));
    expect(batch).toEqual(singles);
    expect(batch.filter((row) => row === null).length).toBeGreaterThanOrEqual(40);
    expect(batch.filter((row) => row !== null).length).toBeGreaterThan(500);
    batch.forEach((row, index) => {
      if (row) expect(row.id).toBe(keys[index]);
    });
  });

  it("social: insured months and the unbroken run", () => {
    const months = batchAndSingles((k) =>
      social.insuredMonths(k, { prefix: "11", from: "2021-11", to: "2026-10", paidBy: AS_OF }),
    );
    expect(months.batch).toEqual(months.singles);
    expect(new Set(months.batch).size).toBeGreaterThan(3);
    const run = batchAndSingles((k) =>
      social.consecutiveInsuredMonths(k, { prefix: "11", upTo: "2026-10", paidBy: AS_OF }),
    );
    expect(run.batch).toEqual(run.singles);
    expect(run.batch.some((months) => months > 0)).toBe(true);
    // A run can never be longer than the months counted over the same span or more.
    const all = social.insuredMonths(keys, {
      prefix: "11",
      from: "1900-01",
      to: "2026-10",
      paidBy: AS_OF,
    });
    run.batch.forEach((length, index) => {
      expect(length).toBeLessThanOrEqual(all[index] as number);
    });
  });

  it("tax: yearly totals", () => {
    const { batch, singles } = batchAndSingles((k) =>
      tax.incomeTaxTotals(k, { prefix: "", year: 2025, paidBy: AS_OF }),
    );
    expect(batch).toEqual(singles);
    expect(batch.some((fen) => fen > 0)).toBe(true);
  });

  it("traffic: valid licences and vehicle counts", () => {
    const licences = batchAndSingles((k) => traffic.hasValidLicense(k, AS_OF));
    expect(licences.batch).toEqual(licences.singles);
    expect(licences.batch).toContain(true);
    const vehicles = batchAndSingles((k) =>
      traffic.vehicleCounts(k, { kind: null, regionPrefix: "", on: AS_OF }),
    );
    expect(vehicles.batch).toEqual(vehicles.singles);
    expect(vehicles.batch.some((count) => count > 0)).toBe(true);
  });
});
