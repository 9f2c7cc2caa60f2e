/**
 * The subgraph server every department runs: its SDL (from `schema/<code>.graphql`) and resolvers
 * as an Apollo Federation subgraph, served by mercurius on Fastify, with health and readiness
 * probes, structured logs carrying the gateway's request id, and the gateway signature check.
 */

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildSubgraphSchema } from "@apollo/subgraph";
import type { GraphQLResolverMap } from "@apollo/subgraph/dist/schema-helper/resolverMap.js";
import { entitiesResolver } from "@apollo/subgraph/dist/types.js";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
} from "fastify";
import {
  GraphQLError,
  type GraphQLFieldResolver,
  type GraphQLSchema,
  isObjectType,
  Kind,
  parse,
} from "graphql";
import mercurius from "mercurius";
import { DEPARTMENT_NAMES, type Department } from "./departments.ts";
import { isProduction } from "./environment.ts";
import { ErrorCode, errorCodeOfStatus } from "./errors.ts";
import { jsonBody, ResponseBuffers } from "./json-response.ts";
import { RequestLoaders } from "./loaders.ts";
import { metricsTokenFromEnv, SubgraphMetrics, serveMetrics } from "./metrics.ts";
import { scalarResolvers } from "./scalars.ts";
import { refuseWhileStopping } from "./serve.ts";
import { departmentSecret, SIGNATURE_HEADER, SignatureVerifier } from "./signing.ts";
import { type DepartmentDatabase, openDepartmentDatabase } from "./sqlite.ts";

export interface SubgraphContext {
  loaders: RequestLoaders;
}

export interface SubgraphOptions {
  department: Department;
  // biome-ignore lint/suspicious/noExplicitAny: resolver maps are typed by each department
  resolvers: GraphQLResolverMap<any>;
  /** True while the department's database is open. */
  isReady: () => boolean;
  /** Called when the server closes (e.g. to close the database). */
  onClose?: () => void;
  /** Require the gateway's signature on GraphQL requests (default: on). */
  requireSignature?: boolean;
  logger?: FastifyServerOptions["logger"];
  /** Bearer token `GET /metrics` requires (default `METRICS_TOKEN`; see common/metrics.ts). */
  metricsToken?: string | null;
}

const schemaDir = fileURLToPath(new URL("../schema/", import.meta.url));

/** The SDL of a department's (or a platform) subgraph: `schema/<name>.graphql`. */
export function subgraphSdl(name: string): string {
  return readFileSync(`${schemaDir}${name}.graphql`, "utf8");
}

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: string;
    /** A POST's variables, handed to mercurius in its preExecution hook (`checkVariablesOnce`). */
    graphqlVariables?: Record<string, unknown>;
  }
}

/** A request id a desk may choose: short, and nothing a log line or a header could trip on. */
export const DESK_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** What the gateway sends a department: up to twenty desks' ids joined by commas (and `+n`). */
export const GATEWAY_REQUEST_IDS = /^[A-Za-z0-9._:,+-]{1,4096}$/;

/**
 * The request id: the caller's `x-request-id` when it is of the `accepted` form, a new UUID
 * otherwise. An id taken as sent, of any length, was passed on to the departments joined with
 * other desks' ids: one desk's 9 KB id pushed the header of a shared department call past the
 * department's limit and failed every caller in it.
 */
export function requestIdOptions(
  accepted: RegExp = DESK_REQUEST_ID,
): Pick<FastifyServerOptions, "requestIdHeader" | "genReqId"> {
  return {
    requestIdHeader: false,
    genReqId: (request) => {
      const sent = request.headers["x-request-id"];
      return typeof sent === "string" && accepted.test(sent) ? sent : randomUUID();
    },
  };
}

/** Echoes the request id, so a desk can quote it when asking about a request. */
export function echoRequestId(app: FastifyInstance): void {
  // Set as the request arrives (a synchronous hook: no promise per request), so that every
  // answer carries it, errors included.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
}

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/**
 * Routes a department answers without the gateway's signature: its health and readiness probes,
 * and its metrics (`METRICS_TOKEN`'s, see common/metrics.ts).
 */
const UNSIGNED_ROUTES = new Set(["/health", "/ready", "/metrics"]);

/**
 * How a GraphQL response is written. A successful answer with data only (every batch the gateway
 * asks for) is written by `jsonPieces`, into a reused buffer when it is large; anything else
 * (errors, other statuses) by JSON.stringify.
 */
function graphQLResponseSerializer(reply: FastifyReply, buffers: ResponseBuffers) {
  return (payload: unknown): string | Buffer => {
    // What Fastify sets for a JSON payload when no serializer of the reply's own is set.
    if (!reply.hasHeader("content-type")) reply.header("content-type", JSON_CONTENT_TYPE);
    const status = reply.statusCode;
    const successful = status >= 200 && status < 300;
    const body = payload as { data?: unknown } | null;
    if (
      successful &&
      body !== null &&
      typeof body === "object" &&
      typeof body.data === "object" &&
      body.data !== null &&
      Object.keys(body).length === 1
    ) {
      const { bytes, release } = jsonBody(body, buffers);
      if (release) reply.raw.once("close", release);
      return bytes;
    }
    // Not mercurius's response schema: it types an error path's items as strings, which turns
    // an entity's position into "0", and the gateway maps an `_entities` error to its place in
    // the answer only from a number (the desk saw person._entities.0.x, and a second error).
    return JSON.stringify(payload);
  };
}

type Representation = Record<string, unknown> & { __typename: string };
type ResolveReference = (reference: unknown, context: unknown, info: unknown) => unknown;

/** The fields of each entity type's `@key(fields: "…")` that are plain fields (`id`, `uscc`). */
function entityKeyFields(schema: GraphQLSchema): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type)) continue;
    for (const directive of type.astNode?.directives ?? []) {
      if (directive.name.value !== "key") continue;
      const fields = directive.arguments?.find((argument) => argument.name.value === "fields");
      if (fields?.value.kind !== Kind.STRING || fields.value.value.includes("{")) continue;
      const names = fields.value.value.split(/[\s,]+/).filter(Boolean);
      keys.set(type.name, [...(keys.get(type.name) ?? []), ...names]);
    }
  }
  return keys;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** `@apollo/subgraph`'s `__typename` tagging of a resolved entity, without its `await`. */
function withTypename(entity: unknown, typename: string): unknown {
  if (entity === null || typeof entity !== "object") return entity;
  if ("__typename" in entity && entity.__typename !== typename) {
    return { ...entity, __typename: typename };
  }
  // A representation returned as it came already holds its own __typename: nothing to define.
  if (Object.hasOwn(entity, "__typename")) return entity;
  Object.defineProperty(entity, "__typename", { value: typename });
  return entity;
}

/**
 * Replaces `_entities`'s resolver with one that first declares every representation's key as a
 * subject of the request (so the first fact asked is loaded for all the entities in one
 * statement, see `RequestLoaders`) and then resolves references as `@apollo/subgraph` does, but
 * without a promise per entity when `__resolveReference` answers synchronously. Anything but
 * object types (interfaces, unknown types) goes to `@apollo/subgraph`'s own resolver.
 */
function resolveEntitiesInBatches(schema: GraphQLSchema, onCall: (entities: number) => void): void {
  const field = schema.getQueryType()?.getFields()._entities;
  if (!field) return;
  const keyFields = entityKeyFields(schema);
  const resolve: GraphQLFieldResolver<
    unknown,
    SubgraphContext,
    { representations: Representation[] }
  > = (_source, { representations }, context, info) => {
    onCall(representations.length);
    let objectTypesOnly = true;
    for (const representation of representations) {
      const { __typename } = representation;
      if (!isObjectType(info.schema.getType(__typename))) objectTypesOnly = false;
      for (const name of keyFields.get(__typename) ?? []) {
        const key = representation[name];
        if (typeof key === "string") context.loaders.addSubject(key);
      }
    }
    if (!objectTypesOnly) return entitiesResolver({ representations, context, info });
    return representations.map((representation) => {
      const { __typename } = representation;
      const type = info.schema.getType(__typename);
      const extensions = type?.extensions as
        | { apollo?: { subgraph?: { resolveReference?: ResolveReference } } }
        | undefined;
      const resolveReference = extensions?.apollo?.subgraph?.resolveReference;
      const entity = resolveReference
        ? resolveReference(representation, context, info)
        : representation;
      return isThenable(entity)
        ? entity.then((resolved) => withTypename(resolved, __typename))
        : withTypename(entity, __typename);
    });
  };
  field.resolve = resolve as GraphQLFieldResolver<unknown, unknown>;
}

/**
 * Hands a POST's variables to mercurius in its preExecution hook rather than with the query.
 * Given variables with the query, mercurius checks them with graphql-js (`buildExecutionContext`)
 * and then runs the query, whose compiled form (graphql-jit), or graphql-js's `execute` before it
 * is compiled, coerces them again, failing the request as the first check would have. Handed over
 * in the hook, they are checked once: for hukou's merged lookups (two variables per slot) and the
 * representations of `_entities` (a check per item), the first check was measurable work.
 * GET requests keep mercurius's own way.
 */
function checkVariablesOnce(app: FastifyInstance): void {
  app.graphql.addHook("preExecution", (_schema, _document, context) => {
    const variables = context.reply.request.graphqlVariables;
    return variables ? { variables } : undefined;
  });
}

export async function buildSubgraphServer(options: SubgraphOptions): Promise<FastifyInstance> {
  const { department } = options;
  const app = Fastify({
    logger: options.logger ?? { level: process.env.LOG_LEVEL ?? "info" },
    ...requestIdOptions(GATEWAY_REQUEST_IDS),
    bodyLimit: 16 * 1024 * 1024,
    // Requests arriving while it stops get a coded error (refuseWhileStopping), not Fastify's.
    return503OnClosing: false,
  });
  refuseWhileStopping(app);

  // Keep the raw body: the signature covers the exact bytes the gateway sent.
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    request.rawBody = body as string;
    try {
      const parsed = body === "" ? {} : JSON.parse(body as string);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        // GraphQL over HTTP allows `"extensions": null`; mercurius would refuse it.
        if (parsed.extensions === null) delete parsed.extensions;
        const { variables } = parsed;
        if (variables && typeof variables === "object" && !Array.isArray(variables)) {
          request.graphqlVariables = variables;
          delete parsed.variables;
        }
      }
      done(null, parsed);
    } catch {
      const error = new Error("Request body is not valid JSON") as Error & { statusCode: number };
      error.statusCode = 400;
      done(error, undefined);
    }
  });

  echoRequestId(app);
  const responseBuffers = new ResponseBuffers();
  app.addHook("preHandler", (request, reply, done) => {
    // Fastify sends a Buffer from a serializer as it sends any Buffer payload.
    if (request.routeOptions.url === "/graphql") {
      reply.serializer(
        graphQLResponseSerializer(reply, responseBuffers) as (payload: unknown) => string,
      );
    }
    done();
  });
  if (options.requireSignature ?? true) {
    const verifier = new SignatureVerifier(departmentSecret(department));
    app.addHook("preHandler", (request, reply, done) => {
      // By the route matched, not the path as sent: the router decodes `/%67raphql` to the
      // GraphQL route, which a test of the raw URL let through unsigned. Every route but the
      // probes and the metrics (which check METRICS_TOKEN) needs the gateway's signature.
      if (UNSIGNED_ROUTES.has(request.routeOptions.url ?? "")) return done();
      const header = request.headers[SIGNATURE_HEADER];
      const problem = verifier.check(
        typeof header === "string" ? header : undefined,
        request.rawBody ?? "",
      );
      if (!problem) return done();
      request.log.warn(
        { signature: problem, ip: request.ip },
        "refused a request not signed by the gateway",
      );
      reply.code(401).send({
        errors: [
          {
            message: `This subgraph answers only the Mianzheng gateway (signature ${problem})`,
            extensions: { code: ErrorCode.Unauthenticated },
          },
        ],
      });
    });
  }

  const schema = buildSubgraphSchema({
    typeDefs: parse(subgraphSdl(department)),
    resolvers: { ...scalarResolvers, ...options.resolvers },
  });
  const metrics = new SubgraphMetrics(department);
  resolveEntitiesInBatches(schema, (entities) => metrics.entities(entities));
  app.addHook("onResponse", (request, reply, done) => {
    if (request.routeOptions.url === "/graphql" && request.method !== "HEAD") {
      metrics.request(reply.statusCode, reply.elapsedTime / 1000);
    }
    done();
  });

  await app.register(mercurius, {
    schema,
    path: "/graphql",
    graphiql: false,
    jit: 1,
    context: (): SubgraphContext => ({ loaders: new RequestLoaders() }),
    errorFormatter: (execution, context) => {
      const formatted = mercurius.defaultErrorFormatter(execution, context);
      // mercurius wraps validation failures in one error holding the real ones: unwrap them.
      const flat = (execution.errors ?? []).flatMap((error) => {
        const wrapped = (error as GraphQLError).originalError as { errors?: unknown } | undefined;
        return Array.isArray(wrapped?.errors) ? (wrapped.errors as GraphQLError[]) : [error];
      });
      const errors = flat.map((error) => {
        const original = (error as GraphQLError).originalError;
        const code = (error as GraphQLError).extensions?.code;
        const status = (original as { statusCode?: unknown } | undefined)?.statusCode;
        if (original && typeof status === "number" && status < 500) {
          // Refused by HTTP handling before GraphQL (a body that is not JSON): the caller's
          // mistake, not a failure of ours to log with a stack.
          return { message: original.message, extensions: { code: errorCodeOfStatus(status) } };
        }
        if (original && !(original instanceof GraphQLError) && !code) {
          // An unexpected failure: log it in full, tell the caller only which department failed.
          context.reply.request.log.error({ err: original }, "resolver failed");
          return {
            message: `Internal error in ${department}`,
            path: (error as GraphQLError).path,
            extensions: { code: ErrorCode.Internal, department },
          };
        }
        const { message, locations, path, extensions } = error as GraphQLError;
        return { message, locations, path, extensions };
      });
      return { statusCode: formatted.statusCode, response: { ...formatted.response, errors } };
    },
  });

  checkVariablesOnce(app);

  serveMetrics(app, {
    token: options.metricsToken !== undefined ? options.metricsToken : metricsTokenFromEnv(),
    production: isProduction(),
    text: () => metrics.text(),
  });
  app.get("/health", async () => ({ status: "ok", department }));
  app.get("/ready", async (_request, reply) => {
    const ready = options.isReady();
    return reply.code(ready ? 200 : 503).send({
      status: ready ? "ready" : "not ready",
      department,
      name: DEPARTMENT_NAMES[department],
    });
  });
  app.addHook("onClose", async () => options.onClose?.());
  return app;
}

export interface DepartmentServerOptions {
  /** Folder of the department's SQLite file (default `DATA_DIR` or `./data`). */
  dataDir?: string;
  logger?: FastifyServerOptions["logger"];
  requireSignature?: boolean;
}

/** Opens the department's database and serves its subgraph over it; closing the app closes it. */
export async function buildDepartmentSubgraph(
  department: Department,
  tables: readonly SQLiteTable[],
  // biome-ignore lint/suspicious/noExplicitAny: resolver maps are typed by each department
  resolversOver: (database: DepartmentDatabase) => GraphQLResolverMap<any>,
  options: DepartmentServerOptions = {},
): Promise<FastifyInstance> {
  const database = openDepartmentDatabase(department, tables, { dir: options.dataDir });
  let open = true;
  return buildSubgraphServer({
    department,
    resolvers: resolversOver(database),
    isReady: () => open,
    onClose: () => {
      open = false;
      database.close();
    },
    logger: options.logger,
    requireSignature: options.requireSignature,
  });
}
