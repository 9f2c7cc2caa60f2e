/** Resolvers of the social-insurance subgraph (`schema/social.graphql`). */
import { regionArgument } from "../../common/arguments.ts";
import { badUserInput } from "../../common/errors.ts";
import { regionOrCode } from "../../common/regions.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import { monthIndex } from "../../common/values.ts";
import type { ContributionRow, SocialStore } from "./store.ts";

interface PersonReference {
  id: string;
}

const FIRST_YEAR = 1900;
const LAST_YEAR = 2200;
const MAX_SPAN_MONTHS = 100 * 12;

/** A month argument within the years the registers can hold (the scalar checks only the shape). */
function monthArgument(argument: string, value: string): string {
  const year = Number(value.slice(0, 4));
  if (year < FIRST_YEAR || year > LAST_YEAR) {
    throw badUserInput(argument, `the year must be between ${FIRST_YEAR} and ${LAST_YEAR}`, value);
  }
  return value;
}

/** `from ≤ to`, at most 100 years apart: anything else is a desk's typo, not a question. */
function monthRange(from: string, to: string): { from: string; to: string } {
  monthArgument("from", from);
  monthArgument("to", to);
  if (from > to) throw badUserInput("to", `must not be before from (${from})`, to);
  if (monthIndex(to) - monthIndex(from) + 1 > MAX_SPAN_MONTHS) {
    throw badUserInput("to", `the range from ${from} must not span more than 100 years`, to);
  }
  return { from, to };
}

interface InsuredMonthsArguments {
  [name: string]: unknown;
  region: string;
  from: string;
  to: string;
  paidBy?: string | null;
}

interface ConsecutiveMonthsArguments {
  [name: string]: unknown;
  region: string;
  upTo: string;
  paidBy?: string | null;
}

function insuredMonthsFilter(args: InsuredMonthsArguments) {
  return {
    prefix: regionArgument("region", args.region),
    ...monthRange(args.from, args.to),
    paidBy: args.paidBy ?? null,
  };
}

function consecutiveMonthsFilter(args: ConsecutiveMonthsArguments) {
  return {
    prefix: regionArgument("region", args.region),
    upTo: monthArgument("upTo", args.upTo),
    paidBy: args.paidBy ?? null,
  };
}

/** The register's key for a reference: identity numbers are stored with an upper-case X. */
const personKey = (person: PersonReference) => person.id.toUpperCase();

export function socialResolvers(store: SocialStore) {
  return {
    Person: {
      // Social insurance contributes facts about persons the household register owns.
      __resolveReference: (reference: PersonReference) => reference,
      insuredMonths: (
        person: PersonReference,
        args: InsuredMonthsArguments,
        context: SubgraphContext,
      ) => {
        const filter = context.loaders.argumentsOf("insuredMonths", args, insuredMonthsFilter);
        return context.loaders.load("insuredMonths", filter, personKey(person), (keys) =>
          store.insuredMonths(keys, filter),
        );
      },
      consecutiveInsuredMonths: (
        person: PersonReference,
        args: ConsecutiveMonthsArguments,
        context: SubgraphContext,
      ) => {
        const filter = context.loaders.argumentsOf(
          "consecutiveInsuredMonths",
          args,
          consecutiveMonthsFilter,
        );
        return context.loaders.load("consecutiveInsuredMonths", filter, personKey(person), (keys) =>
          store.consecutiveInsuredMonths(keys, filter),
        );
      },
      contributions: (
        person: PersonReference,
        args: { from?: string | null; to?: string | null },
        context: SubgraphContext,
      ) => {
        const from = args.from ?? null;
        const to = args.to ?? null;
        if (from !== null && to !== null) monthRange(from, to);
        else if (from !== null) monthArgument("from", from);
        else if (to !== null) monthArgument("to", to);
        const range = { from, to };
        return context.loaders.load("contributions", range, personKey(person), (keys) =>
          store.contributions(keys, range),
        );
      },
    },
    Contribution: {
      region: (row: ContributionRow) => regionOrCode(row.region),
      employer: (row: ContributionRow) => (row.employer === null ? null : { uscc: row.employer }),
      // Paid after the last day of its month: `YYYY-MM` of paidOn sorts after the month.
      backPaid: (row: ContributionRow) => row.paidOn.slice(0, 7) > row.month,
    },
  };
}
