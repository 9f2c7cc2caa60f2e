/**
 * Batched reads of the tax register. Totals are summed in SQL over the whole batch (integer fen,
 * one prepared statement per fact, any batch size), so a batch moves one number per subject. Each
 * statement walks the batch (`keyBatch`) and tags its rows with the position of their subject.
 */
import { and, asc, between, eq, lte, sql } from "drizzle-orm";
import { groupByIndex } from "../../common/loaders.ts";
import {
  batchIndex,
  batchKey,
  type DepartmentDatabase,
  inRegion,
  jsonPerKey,
  keyBatch,
  NO_PAYMENT_LIMIT,
  type PaymentFilter,
  perKeyValues,
} from "../../common/sqlite.ts";
import { incomeTaxes, vats } from "./tables.ts";

export type IncomeTaxRow = typeof incomeTaxes.$inferSelect;
export type VatRow = typeof vats.$inferSelect;

const ids = sql.placeholder("ids");
const from = sql.placeholder("from");
const to = sql.placeholder("to");
const prefix = sql.placeholder("prefix");
const paidBy = sql.placeholder("paidBy");

/** Periods of the calendar years `fromYear`…`toYear` as a `YYYY-MM` range. */
function periodRange(fromYear: number, toYear: number): { from: string; to: string } {
  return { from: `${fromYear}-01`, to: `${toYear}-12` };
}

/** The periods a listing covers: one calendar year, or every period when no year is given. */
function listingRange(year: number | null): { from: string; to: string } {
  return year === null ? { from: "0000-01", to: "9999-12" } : periodRange(year, year);
}

/** A `jsonPerKey` statement of sums over a period range, region prefix and payment day. */
interface TotalsStatement {
  values(parameters: Record<string, unknown>): unknown[][];
}

/** Per key: the total counting towards `filter.year`, in fen (income tax or VAT alike). */
function yearTotals(
  statement: TotalsStatement,
  keys: readonly string[],
  filter: PaymentFilter & { year: number },
): number[] {
  return perKeyValues<number>(
    statement.values({
      ids: JSON.stringify(keys),
      ...periodRange(filter.year, filter.year),
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
    }),
    keys.length,
  );
}

export class TaxStore {
  private readonly incomeTaxPositiveYears;
  private readonly incomeTaxSums;
  private readonly incomeTaxesOfPersons;
  private readonly vatSums;
  private readonly vatsOfOrganizations;

  constructor({ db }: DepartmentDatabase) {
    const batch = keyBatch(ids);
    const incomeTaxCounts = and(
      between(incomeTaxes.period, from, to),
      inRegion(incomeTaxes.region, prefix),
      lte(incomeTaxes.paidOn, paidBy),
    );
    const incomeTaxYear = sql<number>`cast(substr(${incomeTaxes.period}, 1, 4) as integer)`;
    this.incomeTaxPositiveYears = db
      .select({ index: batchIndex, year: incomeTaxYear })
      .from(batch)
      .innerJoin(incomeTaxes, eq(incomeTaxes.personId, batchKey))
      .where(incomeTaxCounts)
      .groupBy(batchIndex, incomeTaxYear)
      .having(sql`sum(${incomeTaxes.amount}) > 0`)
      .orderBy(asc(batchIndex), asc(incomeTaxYear))
      .prepare();
    // One row per subject of the batch: the sum over its key range, 0 where nothing counts.
    this.incomeTaxSums = db
      .select({
        fen: jsonPerKey(
          sql`(select coalesce(sum(${incomeTaxes.amount}), 0) from ${incomeTaxes} where ${and(
            eq(incomeTaxes.personId, batchKey),
            incomeTaxCounts,
          )})`,
        ),
      })
      .from(batch)
      .prepare();
    this.incomeTaxesOfPersons = db
      .select({
        index: batchIndex,
        personId: incomeTaxes.personId,
        period: incomeTaxes.period,
        region: incomeTaxes.region,
        amount: incomeTaxes.amount,
        paidOn: incomeTaxes.paidOn,
      })
      .from(batch)
      .innerJoin(incomeTaxes, eq(incomeTaxes.personId, batchKey))
      .where(between(incomeTaxes.period, from, to))
      .orderBy(
        asc(batchIndex),
        asc(incomeTaxes.period),
        asc(incomeTaxes.region),
        asc(incomeTaxes.paidOn),
      )
      .prepare();

    this.vatSums = db
      .select({
        fen: jsonPerKey(
          sql`(select coalesce(sum(${vats.amount}), 0) from ${vats} where ${and(
            eq(vats.uscc, batchKey),
            between(vats.period, from, to),
            inRegion(vats.region, prefix),
            lte(vats.paidOn, paidBy),
          )})`,
        ),
      })
      .from(batch)
      .prepare();
    this.vatsOfOrganizations = db
      .select({
        index: batchIndex,
        uscc: vats.uscc,
        period: vats.period,
        region: vats.region,
        amount: vats.amount,
        paidOn: vats.paidOn,
      })
      .from(batch)
      .innerJoin(vats, eq(vats.uscc, batchKey))
      .where(between(vats.period, from, to))
      .orderBy(asc(batchIndex), asc(vats.period), asc(vats.region), asc(vats.paidOn))
      .prepare();
  }

  /** Per person: the years in [fromYear, toYear] whose counting income tax adds up to more than 0. */
  incomeTaxYears(
    personIds: readonly string[],
    filter: PaymentFilter & { fromYear: number; toYear: number },
  ): number[][] {
    const rows = this.incomeTaxPositiveYears.values({
      ids: JSON.stringify(personIds),
      ...periodRange(filter.fromYear, filter.toYear),
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
    }) as Array<[number, number]>;
    return groupByIndex(personIds.length, rows).map((group) => group.map((row) => row[1]));
  }

  /** Per person: the counting income tax for periods in `year`, in fen. */
  incomeTaxTotals(
    personIds: readonly string[],
    filter: PaymentFilter & { year: number },
  ): number[] {
    return yearTotals(this.incomeTaxSums, personIds, filter);
  }

  /** Per person: income-tax payments for periods in `year` (every year when null). */
  incomeTaxPayments(personIds: readonly string[], year: number | null): IncomeTaxRow[][] {
    const rows = this.incomeTaxesOfPersons.values({
      ids: JSON.stringify(personIds),
      ...listingRange(year),
    }) as Array<[number, string, string, string, number, string]>;
    return groupByIndex(personIds.length, rows).map((group) =>
      group.map(([, personId, period, region, amount, paidOn]) => ({
        personId,
        period,
        region,
        amount,
        paidOn,
      })),
    );
  }

  /** Per organisation: the counting VAT for periods in `year`, in fen. */
  vatTotals(usccs: readonly string[], filter: PaymentFilter & { year: number }): number[] {
    return yearTotals(this.vatSums, usccs, filter);
  }

  /** Per organisation: VAT payments for periods in `year` (every year when null). */
  vatPayments(usccs: readonly string[], year: number | null): VatRow[][] {
    const rows = this.vatsOfOrganizations.values({
      ids: JSON.stringify(usccs),
      ...listingRange(year),
    }) as Array<[number, string, string, string, number, string]>;
    return groupByIndex(usccs.length, rows).map((group) =>
      group.map(([, uscc, period, region, amount, paidOn]) => ({
        uscc,
        period,
        region,
        amount,
        paidOn,
      })),
    );
  }
}
