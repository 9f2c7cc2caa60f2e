/**
 * Scalars shared by every department's SDL. A malformed value is a BAD_USER_INPUT error before
 * any resolver runs.
 */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from "graphql";
import { ErrorCode } from "./errors.ts";
import { describeValue, isCalendarDate, isYearMonth, parseMoney } from "./values.ts";

function stringScalar(name: string, description: string, valid: (value: string) => boolean) {
  const check = (value: unknown): string => {
    if (typeof value !== "string" || !valid(value)) {
      throw new GraphQLError(`${name} must be ${description}, got ${describeValue(value)}`, {
        extensions: { code: ErrorCode.BadUserInput },
      });
    }
    return value;
  };
  return new GraphQLScalarType({
    name,
    description,
    serialize: (value) => value,
    parseValue: check,
    parseLiteral: (ast: ValueNode) =>
      check(ast.kind === Kind.STRING ? ast.value : `<${ast.kind.toLowerCase()}>`),
  });
}

export const DateScalar = stringScalar("Date", "a calendar date YYYY-MM-DD", isCalendarDate);
export const YearMonthScalar = stringScalar("YearMonth", "a month YYYY-MM", isYearMonth);
export const MoneyScalar = stringScalar(
  "Money",
  "a yuan amount as a decimal string with at most 2 decimals",
  (value) => parseMoney(value) !== null,
);

export const scalarResolvers = { Date: DateScalar, YearMonth: YearMonthScalar, Money: MoneyScalar };
