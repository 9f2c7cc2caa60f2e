/** The `DateTime` scalar of the verification SDL: an instant, ISO 8601 in UTC to the second. */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from "graphql";
import { ErrorCode } from "../../common/errors.ts";
import { describeValue } from "../../common/values.ts";

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** `2026-11-01T16:30:00+08:00` → `2026-11-01T08:30:00Z`; null when not an instant. */
export function parseInstant(value: string): string | null {
  if (!INSTANT.test(value)) return null;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function check(value: unknown): string {
  const instant = typeof value === "string" ? parseInstant(value) : null;
  if (instant === null) {
    throw new GraphQLError(
      `DateTime must be an ISO 8601 instant with a time zone, e.g. 2026-11-01T08:30:00Z, got ${describeValue(value)}`,
      { extensions: { code: ErrorCode.BadUserInput } },
    );
  }
  return instant;
}

export const DateTimeScalar = new GraphQLScalarType({
  name: "DateTime",
  serialize: (value) => value,
  parseValue: check,
  parseLiteral: (ast: ValueNode) =>
    check(ast.kind === Kind.STRING ? ast.value : `<${ast.kind.toLowerCase()}>`),
});
