/**
 * GraphQL over HTTP (the GraphQL Foundation's spec, checked by the graphql-http audits): which
 * requests are well-formed, which media type answers, which status code goes with which failure.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { GraphQLError } from "graphql";
import Negotiator from "negotiator";
import { ErrorCode } from "../common/errors.ts";

declare module "fastify" {
  interface FastifyRequest {
    /**
     * How the request was answered, for the metrics: `ok`, `partial` (data with errors), or the
     * code of the (first) error that refused or failed it. Null until it is answered.
     */
    outcome: string | null;
    /** Counted by the metrics already (see the gateway's onResponse hook). */
    counted: boolean;
  }
}

export interface GraphQLParams {
  query: string;
  operationName?: string;
  variables?: Record<string, unknown>;
  extensions?: Record<string, unknown>;
}

export const GRAPHQL_RESPONSE = "application/graphql-response+json";
export const JSON_MEDIA = "application/json";

/** A request the server cannot even start on: answered with `status` and one error. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string = ErrorCode.BadUserInput,
  ) {
    super(message);
  }
}

/**
 * What the gateway can answer in, as offered to content negotiation: UTF-8 only, and where the
 * Accept header ranks both alike (`*\/*`, `application/*`) the legacy `application/json` first,
 * as GraphQL over HTTP asks of a server before its watershed.
 */
const OFFERED: readonly string[] = [
  `${JSON_MEDIA}; charset=utf-8`,
  `${GRAPHQL_RESPONSE}; charset=utf-8`,
];

/** Accept headers seen, and their answer: desks send the same one with every request. */
const negotiated = new Map<string, string | null>();

/**
 * The media type to answer with, from the Accept header (weights, `q=0` and wildcards as RFC 9110
 * has them, by `negotiator`); null when none is acceptable.
 */
export function responseMediaType(accept: string | undefined): string | null {
  if (!accept) return JSON_MEDIA;
  const known = negotiated.get(accept);
  if (known !== undefined) return known;
  const offer = new Negotiator({ headers: { accept } }).mediaType(OFFERED);
  const type = offer === undefined ? null : (offer.split(";")[0] as string);
  if (negotiated.size >= 1_000) negotiated.clear();
  negotiated.set(accept, type);
  return type;
}

function objectParam(name: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  throw new RequestError(400, `"${name}" must be an object`);
}

function jsonParam(name: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    throw new RequestError(400, `"${name}" is not valid JSON`);
  }
}

/** Reads the parameters of a GET (URL query) or POST (JSON body) GraphQL request. */
export function readParams(request: FastifyRequest): GraphQLParams {
  let raw: Record<string, unknown>;
  if (request.method === "GET") {
    raw = { ...(request.query as Record<string, unknown>) };
    raw.variables = jsonParam("variables", raw.variables);
    raw.extensions = jsonParam("extensions", raw.extensions);
  } else {
    const type = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== JSON_MEDIA) {
      throw new RequestError(415, "POST requests must have content type application/json");
    }
    if (typeof request.body !== "object" || request.body === null || Array.isArray(request.body)) {
      throw new RequestError(400, "The request body must be a JSON object");
    }
    raw = request.body as Record<string, unknown>;
  }
  const { query, operationName } = raw;
  if (typeof query !== "string" || query.trim() === "") {
    throw new RequestError(400, '"query" must be a non-empty string');
  }
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string") {
    throw new RequestError(400, '"operationName" must be a string');
  }
  const params: GraphQLParams = { query };
  if (typeof operationName === "string") params.operationName = operationName;
  const variables = objectParam("variables", raw.variables);
  if (variables) params.variables = variables;
  const extensions = objectParam("extensions", raw.extensions);
  if (extensions) params.extensions = extensions;
  return params;
}

export interface FormattedError {
  message: string;
  locations?: ReadonlyArray<{ line: number; column: number }>;
  path?: ReadonlyArray<string | number>;
  extensions?: Record<string, unknown>;
}

/** Errors as desks see them: message, locations, path, extensions; never a stack. */
export function formatError(error: GraphQLError | FormattedError): FormattedError {
  const formatted: FormattedError = { message: error.message };
  if (error.locations && error.locations.length > 0) formatted.locations = error.locations;
  if (error.path) formatted.path = error.path;
  if (error.extensions && Object.keys(error.extensions).length > 0) {
    formatted.extensions = { ...error.extensions };
  }
  return formatted;
}

/**
 * Status of a document that does not parse or validate: 400 in the new media type; legacy
 * `application/json` clients expect 200 with errors (GraphQL over HTTP, section 6.4.1).
 */
export function documentErrorStatus(mediaType: string): number {
  return mediaType === GRAPHQL_RESPONSE ? 400 : 200;
}

/** Sends a request-level failure (no execution happened) in the negotiated media type. */
export function sendRequestError(
  reply: FastifyReply,
  mediaType: string,
  status: number,
  errors: ReadonlyArray<GraphQLError | FormattedError>,
  headers: Record<string, string> = {},
): FastifyReply {
  const code = errors[0]?.extensions?.code;
  reply.request.outcome = typeof code === "string" ? code : ErrorCode.Internal;
  return reply
    .code(status)
    .headers(headers)
    .type(`${mediaType}; charset=utf-8`)
    .send(JSON.stringify({ errors: errors.map(formatError) }));
}
