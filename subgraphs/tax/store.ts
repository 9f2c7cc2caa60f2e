/**
 * Batched reads of the tax register. Totals are summed in SQL over the whole batch (integer fen,
 * one prepared statement per fact, any batch size), so a batch moves one number per subject.
 */
import { and, asc, between, lte, sql } from "drizzle-orm";
import { groupRows, valueByKey } from "../../common/loaders.ts";
import {
  type DepartmentDatabase,
  inJsonArray,
  inRegion,
  NO_PAYMENT_LIMIT,
  type PaymentFilter,
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

export class TaxStore {
  private readonly incomeTaxPositiveYears;
  private readonly incomeTaxSums;
  private readonly incomeTaxesOfPersons;
  private readonly vatSums;
  private readonly vatsOfOrganizations;

  constructor({ db }: DepartmentDatabase) {
    const incomeTaxCounts = and(
      inJsonArray(incomeTaxes.personId, ids),
      between(incomeTaxes.period, from, to),
      inRegion(incomeTaxes.region, prefix),
      lte(incomeTaxes.paidOn, paidBy),
    );
    const incomeTaxYear = sql<number>`cast(substr(${incomeTaxes.period}, 1, 4) as integer)`;
    this.incomeTaxPositiveYears = db
      .select({ personId: incomeTaxes.personId, year: incomeTaxYear })
      .from(incomeTaxes)
      .where(incomeTaxCounts)
      .groupBy(incomeTaxes.personId, incomeTaxYear)
      .having(sql`sum(${incomeTaxes.amount}) > 0`)
      .orderBy(asc(incomeTaxes.personId), asc(incomeTaxYear))
      .prepare();
    this.incomeTaxSums = db
      .select({ personId: incomeTaxes.personId, fen: sql<number>`sum(${incomeTaxes.amount})` })
      .from(incomeTaxes)
      .where(incomeTaxCounts)
      .groupBy(incomeTaxes.personId)
      .prepare();
    this.incomeTaxesOfPersons = db
      .select()
      .from(incomeTaxes)
      .where(and(inJsonArray(incomeTaxes.personId, ids), between(incomeTaxes.period, from, to)))
      .orderBy(asc(incomeTaxes.personId), asc(incomeTaxes.period), asc(incomeTaxes.region))
      .prepare();

    this.vatSums = db
      .select({ uscc: vats.uscc, fen: sql<number>`sum(${vats.amount})` })
      .from(vats)
      .where(
        and(
          inJsonArray(vats.uscc, ids),
          between(vats.period, from, to),
          inRegion(vats.region, prefix),
          lte(vats.paidOn, paidBy),
        ),
      )
      .groupBy(vats.uscc)
      .prepare();
    this.vatsOfOrganizations = db
      .select()
      .from(vats)
      .where(and(inJsonArray(vats.uscc, ids), between(vats.period, from, to)))
      .orderBy(asc(vats.uscc), asc(vats.period), asc(vats.region))
      .prepare();
  }

  /** Per person: the years in [fromYear, toYear] whose counting income tax adds up to more than 0. */
  incomeTaxYears(
    personIds: readonly string[],
    filter: PaymentFilter & { fromYear: number; toYear: number },
  ): number[][] {
    const rows = this.incomeTaxPositiveYears.all({
      ids: JSON.stringify(personIds),
      ...periodRange(filter.fromYear, filter.toYear),
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
    });
    return groupRows(personIds, rows, (row) => row.personId).map((group) =>
      group.map((row) => row.year),
    );
  }

  /** Per person: the counting income tax for periods in `year`, in fen. */
  incomeTaxTotals(
    personIds: readonly string[],
    filter: PaymentFilter & { year: number },
  ): number[] {
    const rows = this.incomeTaxSums.all({
      ids: JSON.stringify(personIds),
      ...periodRange(filter.year, filter.year),
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
    });
    return valueByKey(
      personIds,
      rows,
      (row) => row.personId,
      (row) => row.fen,
      0,
    );
  }

  /** Per person: income-tax payments for periods in `year` (every year when null). */
  incomeTaxPayments(personIds: readonly string[], year: number | null): IncomeTaxRow[][] {
    const rows = this.incomeTaxesOfPersons.all({
      ids: JSON.stringify(personIds),
      ...listingRange(year),
    });
    return groupRows(personIds, rows, (row) => row.personId);
  }

  /** Per organisation: the counting VAT for periods in `year`, in fen. */
  vatTotals(usccs: readonly string[], filter: PaymentFilter & { year: number }): number[] {
    const rows = this.vatSums.all({
      ids: JSON.stringify(usccs),
      ...periodRange(filter.year, filter.year),
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
    });
    return valueByKey(
      usccs,
      rows,
      (row) => row.uscc,
      (row) => row.fen,
      0,
    );
  }

  /** Per organisation: VAT payments for periods in `year` (every year when null). */
  vatPayments(usccs: readonly string[], year: number | null): VatRow[][] {
    const rows = this.vatsOfOrganizations.all({
      ids: JSON.stringify(usccs),
      ...listingRange(year),
    });
    return groupRows(usccs, rows, (row) => row.uscc);
  }
}
