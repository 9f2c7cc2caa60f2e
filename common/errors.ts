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

/**
 * The code of a failure known only by its HTTP status (Fastify's own refusals: a body too large
 * or not JSON, a media type not served; a reply sent without a code). One mapping for the error
 * handler and the metrics, so that what a caller is told and what is counted agree.
 */
export function errorCodeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return ErrorCode.Unauthenticated;
    case 403:
      return ErrorCode.Forbidden;
    case 404:
    case 405:
      return ErrorCode.NotFound;
    case 409:
      return ErrorCode.Conflict;
    case 413:
      return ErrorCode.LimitExceeded;
    case 429:
      return ErrorCode.RateLimited;
    case 503:
      return ErrorCode.ShuttingDown;
    default:
      return status >= 500 ? ErrorCode.Internal : ErrorCode.BadUserInput;
  }
}

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
