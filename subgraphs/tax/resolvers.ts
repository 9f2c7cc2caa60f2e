/** Resolvers of the tax subgraph (`schema/tax.graphql`). */
import { regionArgument } from "../../common/arguments.ts";
import { badUserInput } from "../../common/errors.ts";
import { regionOrCode } from "../../common/regions.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import { formatMoney } from "../../common/values.ts";
import type { IncomeTaxRow, TaxStore, VatRow } from "./store.ts";

interface PersonReference {
  id: string;
}
interface OrganizationReference {
  uscc: string;
}

const FIRST_YEAR = 1900;
const LAST_YEAR = 2200;
const MAX_SPAN_YEARS = 100;

/** A year within the years the register can hold: anything else is a desk's typo. */
function yearArgument(argument: string, year: number): number {
  if (year < FIRST_YEAR || year > LAST_YEAR) {
    throw badUserInput(
      argument,
      `must be a year between ${FIRST_YEAR} and ${LAST_YEAR}`,
      String(year),
    );
  }
  return year;
}

/** `fromYear ≤ toYear`, at most 100 years: both ends included. */
function yearRange(fromYear: number, toYear: number): { fromYear: number; toYear: number } {
  yearArgument("fromYear", fromYear);
  yearArgument("toYear", toYear);
  if (fromYear > toYear) {
    throw badUserInput("toYear", `must not be before fromYear (${fromYear})`, String(toYear));
  }
  if (toYear - fromYear + 1 > MAX_SPAN_YEARS) {
    throw badUserInput(
      "toYear",
      `the range from ${fromYear} must not span more than ${MAX_SPAN_YEARS} years`,
      String(toYear),
    );
  }
  return { fromYear, toYear };
}

/** Optional `region` and `paidBy` of a total: no region is everywhere, no paidBy every payment. */
function paymentFilter(args: { region?: string | null; paidBy?: string | null }) {
  return {
    prefix: args.region == null ? "" : regionArgument("region", args.region),
    paidBy: args.paidBy ?? null,
  };
}

interface IncomeTaxYearsArguments {
  [name: string]: unknown;
  region: string;
  fromYear: number;
  toYear: number;
  paidBy?: string | null;
}

function incomeTaxYearsFilter(args: IncomeTaxYearsArguments) {
  return {
    prefix: regionArgument("region", args.region),
    ...yearRange(args.fromYear, args.toYear),
    paidBy: args.paidBy ?? null,
  };
}

/** A year's total: the year checked, then where and by when payments count. */
function totalFilter(args: { year: number; region?: string | null; paidBy?: string | null }) {
  return { year: yearArgument("year", args.year), ...paymentFilter(args) };
}

// Registers store identity numbers and credit codes upper-case.
const personKey = (person: PersonReference) => person.id.toUpperCase();
const organizationKey = (organization: OrganizationReference) => organization.uscc.toUpperCase();

export function taxResolvers(store: TaxStore) {
  return {
    Person: {
      // The tax bureau contributes facts about persons the household register owns.
      __resolveReference: (reference: PersonReference) => reference,
      incomeTaxYears: (
        person: PersonReference,
        args: IncomeTaxYearsArguments,
        context: SubgraphContext,
      ) => {
        const filter = context.loaders.argumentsOf("incomeTaxYears", args, incomeTaxYearsFilter);
        return context.loaders.load("incomeTaxYears", filter, personKey(person), (keys) =>
          store.incomeTaxYears(keys, filter),
        );
      },
      incomeTaxTotal: async (
        person: PersonReference,
        args: { year: number; region?: string | null; paidBy?: string | null },
        context: SubgraphContext,
      ) => {
        const filter = context.loaders.argumentsOf("incomeTaxTotal", args, totalFilter);
        const fen = await context.loaders.load(
          "incomeTaxTotal",
          filter,
          personKey(person),
          (keys) => store.incomeTaxTotals(keys, filter),
        );
        return formatMoney(fen);
      },
      incomeTaxPayments: (
        person: PersonReference,
        args: { year?: number | null },
        context: SubgraphContext,
      ) => {
        const year = args.year == null ? null : yearArgument("year", args.year);
        return context.loaders.load("incomeTaxPayments", { year }, personKey(person), (keys) =>
          store.incomeTaxPayments(keys, year),
        );
      },
    },
    Organization: {
      // The market regulator owns organisations; the tax bureau adds their VAT.
      __resolveReference: (reference: OrganizationReference) => reference,
      vatTotal: async (
        organization: OrganizationReference,
        args: { year: number; region?: string | null; paidBy?: string | null },
        context: SubgraphContext,
      ) => {
        const filter = context.loaders.argumentsOf("vatTotal", args, totalFilter);
        const fen = await context.loaders.load(
          "vatTotal",
          filter,
          organizationKey(organization),
          (keys) => store.vatTotals(keys, filter),
        );
        return formatMoney(fen);
      },
      vatPayments: (
        organization: OrganizationReference,
        args: { year?: number | null },
        context: SubgraphContext,
      ) => {
        const year = args.year == null ? null : yearArgument("year", args.year);
        return context.loaders.load(
          "vatPayments",
          { year },
          organizationKey(organization),
          (keys) => store.vatPayments(keys, year),
        );
      },
    },
    IncomeTaxPayment: {
      region: (row: IncomeTaxRow) => regionOrCode(row.region),
      amount: (row: IncomeTaxRow) => formatMoney(row.amount),
    },
    VatPayment: {
      region: (row: VatRow) => regionOrCode(row.region),
      amount: (row: VatRow) => formatMoney(row.amount),
    },
  };
}
