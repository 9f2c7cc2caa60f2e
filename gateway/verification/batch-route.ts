/**
 * `POST /verify/batch`, what `npm run verify` calls: one batch of subjects in, exactly the NDJSON
 * result lines the CLI writes out, one per subject in the order asked, each with its proof.
 *
 * It runs the same verification as `Query.verify` (authorization by the policy's scope, the facts
 * through the federated graph, one audit entry per subject, durable before anything is sent), but
 * skips what only a GraphQL answer needs: graphql-js completing a thousand verdicts, result shaping,
 * serialising a megabyte of JSON that the CLI parses and serialises again. The signing threads
 * encode the lines with their proofs straight into the buffer that is sent.
 *
 * Request (JSON): `{"policy", "subjects": [...], "on"?, "issuedAt"?, "proofs"?: true}`, with the
 * desk's `Authorization` and `X-Purpose` as on /graphql (same authentication and rate limit).
 * Answer: 200 `application/x-ndjson`; refusals are JSON `{"errors": [{message, extensions.code}]}`
 * with 400, 401, 403, 413, 429 or 503 (`AUDIT_UNAVAILABLE`: nothing disclosed).
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { ErrorCode } from "../../common/errors.ts";
import { requestContext } from "../department-client.ts";
import { OPEN_PRINCIPAL, type Principal } from "../principal.ts";
import { AUDIT_UNAVAILABLE, LedgerUnavailable } from "../security/pipeline.ts";
import type { AuthenticatedRouteOptions } from "./jobs.ts";
import { parseInstant } from "./scalars.ts";
import { VerificationRefused, type VerificationService } from "./service.ts";

export const BATCH_PATH = "/verify/batch";
export const NDJSON = "application/x-ndjson; charset=utf-8";

/** The body of a batch request. */
export interface BatchRequest {
  policy: string;
  subjects: string[];
  /** Application date, `YYYY-MM-DD` (default: today in Beijing). */
  on?: string | null;
  /** Pinned issue time of the proofs (ISO 8601), as `Query.verify(issuedAt:)`. */
  issuedAt?: string | null;
  /** Whether the lines carry proofs (default true). */
  proofs?: boolean;
}

const STATUS_OF_CODE: Record<string, number> = {
  [ErrorCode.BadUserInput]: 400,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.LimitExceeded]: 413,
};

function refuse(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  argument?: string,
): FastifyReply {
  reply.request.outcome = code;
  return reply
    .code(status)
    .type("application/json; charset=utf-8")
    .send({ errors: [{ message, extensions: { code, ...(argument ? { argument } : {}) } }] });
}

/** The request body, or the reason it is not one. */
function readBody(body: unknown): BatchRequest | VerificationRefused {
  const bad = (message: string, argument?: string) =>
    new VerificationRefused(ErrorCode.BadUserInput, message, argument);
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    return bad('Send {"policy": …, "subjects": [...], "on": …} as application/json');
  }
  const request = body as Record<string, unknown>;
  if (typeof request.policy !== "string") return bad('"policy" must be a string', "policy");
  if (!Array.isArray(request.subjects)) return bad('"subjects" must be an array', "subjects");
  const index = request.subjects.findIndex((subject) => typeof subject !== "string");
  if (index !== -1) return bad(`subjects[${index}] must be a string`, `subjects[${index}]`);
  for (const name of ["on", "issuedAt"] as const) {
    const value = request[name];
    if (value !== undefined && value !== null && typeof value !== "string") {
      return bad(`"${name}" must be a string`, name);
    }
  }
  if (request.proofs !== undefined && typeof request.proofs !== "boolean") {
    return bad('"proofs" must be true or false', "proofs");
  }
  return request as unknown as BatchRequest;
}

export function registerBatchRoute(
  app: FastifyInstance,
  service: VerificationService,
  authenticated: AuthenticatedRouteOptions,
  options: {
    /** Security off: requests without a principal run as the open principal. */
    open: boolean;
    /** The gateway's list-size limit (`MAX_LIST_SIZE`), as on `Query.verify(subjects:)`. */
    maxListSize: number | null;
  },
): void {
  app.post(BATCH_PATH, authenticated, async (request, reply) => {
    const principal: Principal | null =
      (request.principal as Principal | null) ?? (options.open ? OPEN_PRINCIPAL : null);
    if (!principal) {
      return refuse(
        reply,
        401,
        ErrorCode.Unauthenticated,
        "Authorization: Bearer <desk key> and X-Purpose are required",
      );
    }
    try {
      const body = readBody(request.body);
      if (body instanceof VerificationRefused) throw body;
      const policy = service.authorize(body.policy, principal);
      const on = service.applicationDate(body.on);
      let pinned: number | null = null;
      if (body.issuedAt !== undefined && body.issuedAt !== null) {
        const instant = parseInstant(body.issuedAt);
        if (instant === null) {
          throw new VerificationRefused(
            ErrorCode.BadUserInput,
            '"issuedAt" must be an ISO 8601 instant with a time zone, e.g. 2026-11-01T08:30:00Z',
            "issuedAt",
          );
        }
        pinned = service.pinnedIssuedAt(instant);
      }
      if (options.maxListSize !== null && body.subjects.length > options.maxListSize) {
        throw new VerificationRefused(
          ErrorCode.LimitExceeded,
          `"subjects" has ${body.subjects.length} elements; at most ${options.maxListSize} per request (send several requests)`,
          "subjects",
        );
      }
      const context = requestContext(String(request.id), principal, request.log);
      // Returns once the accesses are durable in the audit ledger.
      const run = await service.verify(policy, body.subjects, on, context, pinned);
      const parts = await Promise.all(service.resultLines(run, principal, body.proofs !== false));
      return reply
        .type(NDJSON)
        .header("x-verdicts", String(run.verdicts.length))
        .send(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    } catch (error) {
      if (error instanceof VerificationRefused) {
        return refuse(
          reply,
          STATUS_OF_CODE[error.code] ?? 400,
          error.code,
          error.message,
          error.argument,
        );
      }
      if (error instanceof LedgerUnavailable) {
        request.log.error({ err: error }, "audit ledger unavailable: verdicts withheld");
        return refuse(
          reply,
          503,
          AUDIT_UNAVAILABLE,
          "The access could not be recorded in the audit ledger, so nothing was disclosed; retry later",
        );
      }
      throw error;
    }
  });
}
