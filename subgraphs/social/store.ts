/**
 * Batched reads of the social-insurance register. Facts are computed in SQL over the whole batch
 * (one prepared statement per fact, any batch size), so 1,000 persons' 60-month checks move
 * 1,000 counts rather than 60,000 rows.
 */
import { and, asc, between, eq, lte, sql } from "drizzle-orm";
import { groupByIndex, valueByIndex, valueByKey } from "../../common/loaders.ts";
import {
  batchIndex,
  batchKey,
  type DepartmentDatabase,
  inJsonArray,
  inRegion,
  keyBatch,
  NO_PAYMENT_LIMIT,
  type PaymentFilter,
} from "../../common/sqlite.ts";
import { contributions } from "./tables.ts";

/** Which contributions count towards an insured month. */
export type InsuranceFilter = PaymentFilter;

export type ContributionRow = typeof contributions.$inferSelect;

const ids = sql.placeholder("ids");
const from = sql.placeholder("from");
const to = sql.placeholder("to");
const prefix = sql.placeholder("prefix");
const paidBy = sql.placeholder("paidBy");
const runKey = sql.placeholder("runKey");

/** Months counted from year 0: consecutive calendar months differ by exactly 1. */
function monthNumber(yearMonth: string): number {
  return Number(yearMonth.slice(0, 4)) * 12 + Number(yearMonth.slice(5, 7));
}

export class SocialStore {
  private readonly insuredMonthCounts;
  private readonly insuredRunLengths;
  private readonly contributionsOfPersons;

  constructor({ db }: DepartmentDatabase) {
    const counts = and(
      inJsonArray(contributions.personId, ids),
      inRegion(contributions.region, prefix),
      lte(contributions.paidOn, paidBy),
    );
    // One row per person of the batch, counted by SQLite over that person's key range.
    this.insuredMonthCounts = db
      .select({
        index: batchIndex,
        months: sql<number>`(select count(distinct ${contributions.month}) from ${contributions} where ${and(
          eq(contributions.personId, batchKey),
          between(contributions.month, from, to),
          inRegion(contributions.region, prefix),
          lte(contributions.paidOn, paidBy),
        )})`,
      })
      .from(keyBatch(ids))
      .prepare();

    // Gaps and islands: walking a person's insured months newest first, month number + rank stays
    // constant exactly while the months are consecutive. The run ending at `to` is the rows whose
    // constant equals monthNumber(to) + 1 (the newest row must be `to` itself, rank 1).
    const ranked = db
      .select({
        personId: contributions.personId,
        runKey: sql<number>`cast(substr(${contributions.month}, 1, 4) as integer) * 12
          + cast(substr(${contributions.month}, 6, 2) as integer)
          + row_number() over (partition by ${contributions.personId} order by ${contributions.month} desc)`.as(
          "run_key",
        ),
      })
      .from(contributions)
      .where(and(counts, lte(contributions.month, to)))
      .as("ranked");
    this.insuredRunLengths = db
      .select({ personId: ranked.personId, months: sql<number>`count(*)` })
      .from(ranked)
      .where(eq(ranked.runKey, runKey))
      .groupBy(ranked.personId)
      .prepare();

    this.contributionsOfPersons = db
      .select({
        index: batchIndex,
        personId: contributions.personId,
        month: contributions.month,
        region: contributions.region,
        employer: contributions.employer,
        paidOn: contributions.paidOn,
      })
      .from(keyBatch(ids))
      .innerJoin(contributions, eq(contributions.personId, batchKey))
      .where(between(contributions.month, from, to))
      .orderBy(asc(batchIndex), asc(contributions.month))
      .prepare();
  }

  /** Per person: the number of distinct months in [from, to] with a contribution that counts. */
  insuredMonths(
    personIds: readonly string[],
    filter: InsuranceFilter & { from: string; to: string },
  ): number[] {
    const rows = this.insuredMonthCounts.values({
      ids: JSON.stringify(personIds),
      from: filter.from,
      to: filter.to,
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
    }) as Array<[number, number]>;
    return valueByIndex(personIds.length, rows, 0);
  }

  /** Per person: the length of the unbroken run of counting months that ends with `upTo`. */
  consecutiveInsuredMonths(
    personIds: readonly string[],
    filter: InsuranceFilter & { upTo: string },
  ): number[] {
    const rows = this.insuredRunLengths.all({
      ids: JSON.stringify(personIds),
      to: filter.upTo,
      prefix: filter.prefix,
      paidBy: filter.paidBy ?? NO_PAYMENT_LIMIT,
      runKey: monthNumber(filter.upTo) + 1,
    });
    return valueByKey(
      personIds,
      rows,
      (row) => row.personId,
      (row) => row.months,
      0,
    );
  }

  /** Per person: contributions for months in [from, to] (either end open when null), by month. */
  contributions(
    personIds: readonly string[],
    range: { from: string | null; to: string | null },
  ): ContributionRow[][] {
    const rows = this.contributionsOfPersons.values({
      ids: JSON.stringify(personIds),
      from: range.from ?? "0000-01",
      to: range.to ?? "9999-12",
    }) as Array<[number, string, string, string, string | null, string]>;
    return groupByIndex(personIds.length, rows).map((group) =>
      group.map(([, personId, month, region, employer, paidOn]) => ({
        personId,
        month,
        region,
        employer,
        paidOn,
      })),
    );
  }
}
