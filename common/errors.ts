/**
 * Error codes are part of the public contract: desks branch on `extensions.code`, never on text.
 */
import { GraphQLError } from "graphql";

export const ErrorCode = {
  BadUserInput: "BAD_USER_INPUT",
  Forbidden: "FORBIDDEN",
  Unauthenticated: "UNAUTHENTICATED",
  DepartmentUnavailable: "DEPARTMENT_UNAVAILABLE",
  LimitExceeded: "LIMIT_EXCEEDED",
  RateLimited: "RATE_LIMITED",
  /** No such route (404), or a method the route does not serve (405, `Allow`). */
  NotFound: "NOT_FOUND",
  /** 409: what was asked of a resource its state does not allow yet (a job still running). */
  Conflict: "CONFLICT",
  /** The server is stopping (503, `Retry-After`): retry on another instance or shortly. */
  ShuttingDown: "SHUTTING_DOWN",
  Internal: "INTERNAL_SERVER_ERROR",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A GraphQL error for a malformed argument, naming the argument as desks see it. */
export function badUserInput(argument: string, problem: string, value?: string): GraphQLError {
  return new GraphQLError(`Argument "${argument}" is invalid: ${problem}`, {
    extensions: {
      code: ErrorCode.BadUserInput,
      argument,
      ...(value === undefined ? {} : { value }),
    },
  });
}
