/**
 * The federated gateway: Apollo's composition and query planner, served from Fastify with the
 * executor called directly (no Apollo Server request pipeline), documents parsed and validated
 * once, and each department reached through its own signed, pooled, breaker-guarded client.
 */
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
// Apollo pieces from their own files: the package index also loads its OpenTelemetry and
// fetch set-up, which this gateway never uses (a quarter of a second at start-up).
import { LocalGraphQLDataSource } from "@apollo/gateway/dist/datasources/LocalGraphQLDataSource.js";
import type { GraphQLDataSource } from "@apollo/gateway/dist/datasources/types.js";
import { buildSubgraphSchema } from "@apollo/subgraph";
import cors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import {
  type GraphQLError,
  type GraphQLSchema,
  getVariableValues,
  parse,
  type ValueNode,
} from "graphql";

import {
  DEPARTMENTS,
  type Department,
  isDepartment,
  PLATFORM_SUBGRAPHS,
  type PlatformSubgraphName,
} from "../common/departments.ts";
import { ErrorCode, errorCodeOfStatus } from "../common/errors.ts";
import { jsonBody, ResponseBuffers } from "../common/json-response.ts";
import { serveMetrics } from "../common/metrics.ts";
import { scalarResolvers } from "../common/scalars.ts";
import { refuseWhileStopping } from "../common/serve.ts";
import { departmentSecret } from "../common/signing.ts";
import { echoRequestId, requestIdOptions, subgraphSdl } from "../common/subgraph.ts";
import { type GatewayOverrides, gatewayConfigFromEnv } from "./config.ts";
import { DepartmentClient, requestContext } from "./department-client.ts";
import { Federation } from "./execution/federation.ts";
import {
  documentErrorStatus,
  formatError,
  GRAPHQL_RESPONSE,
  type GraphQLParams,
  JSON_MEDIA,
  RequestError,
  readParams,
  responseMediaType,
  sendRequestError,
} from "./http.ts";
import { registerLandingPage } from "./landing.ts";
import { type AccessLedger, AuditLedger } from "./ledger/ledger.ts";
import { GatewayMetrics } from "./metrics.ts";
import { DocumentCache, selectOperation } from "./operations.ts";
import { type LocalSubgraph, type PlatformServices, platformSubgraphs } from "./platform.ts";
import type { Principal } from "./principal.ts";
import { LedgerUnavailable, SecurityPipeline, sendAuditUnavailable } from "./security/pipeline.ts";
import { readSupergraph, SUPERGRAPH_PATH } from "./supergraph.ts";
import { DateTimeScalar } from "./verification/scalars.ts";

declare module "fastify" {
  interface FastifyInstance {
    /** The audit ledger this gateway records accesses in (for its operators and tests). */
    ledger: AccessLedger;
  }
}

export interface GatewayOptions {
  config?: GatewayOverrides;
  /** Supergraph SDL (default: the checked-in `schema/supergraph.graphql`). */
  supergraphSdl?: string;
  logger?: boolean | { level: string };
}

/** Apollo's logger interface on top of the request logger. */
function apolloLogger(app: FastifyInstance) {
  return {
    debug: (message: unknown) => app.log.debug(message),
    info: (message: unknown) => app.log.info(message),
    warn: (message: unknown) => app.log.warn(message),
    error: (message: unknown) => app.log.error(message),
  };
}

/**
 * The supergraph's custom scalars are opaque to Apollo; give them the departments' rules (and
 * verification's DateTime) so that a malformed Date, YearMonth, Money or DateTime is refused by
 * the gateway, in a literal or a variable.
 */
function installScalarRules(schema: GraphQLSchema): void {
  for (const [name, rules] of Object.entries({ ...scalarResolvers, DateTime: DateTimeScalar })) {
    const type = schema.getType(name);
    if (type && "parseLiteral" in type) {
      Object.assign(type, {
        parseValue: rules.parseValue,
        parseLiteral: (value: ValueNode, variables?: Record<string, unknown> | null) => {
          try {
            return rules.parseLiteral(value, variables);
          } catch (error) {
            // Rethrown as a plain error, graphql-js's validation keeps the literal's node (a
            // GraphQLError it would report as it is, without one), from which the document cache
            // names the argument and the location; the code goes along.
            throw Object.assign(new Error((error as Error).message), {
              extensions: (error as GraphQLError).extensions,
            });
          }
        },
      });
    }
  }
}

export async function buildGateway(options: GatewayOptions = {}): Promise<FastifyInstance> {
  const config = gatewayConfigFromEnv(options.config);
  const app = Fastify({
    logger: options.logger ?? { level: process.env.LOG_LEVEL ?? "info" },
    ...requestIdOptions(),
    bodyLimit: config.security.limits.maxBodyBytes,
    // Requests arriving while it stops get a coded error (refuseWhileStopping), not Fastify's.
    return503OnClosing: false,
    // Malformed HTTP and undecodable URLs get the gateway's error shape, with a code.
    clientErrorHandler: answerClientError,
    frameworkErrors: (error, _request, reply) => {
      // An undecodable URL (400), a path parameter too long (414): the message names the URL,
      // cut as the not-found handler cuts it.
      sendRequestError(reply as FastifyReply, JSON_MEDIA, error.statusCode ?? 400, [
        { message: error.message.slice(0, 200), extensions: { code: ErrorCode.BadUserInput } },
      ]);
    },
  });
  refuseWhileStopping(app);
  const supergraph = readSupergraph(options.supergraphSdl ?? readFileSync(SUPERGRAPH_PATH, "utf8"));
  // Desks, purposes, the audit ledger: refuses to start on a configuration production must not run.
  const security = await SecurityPipeline.create(config, app.log, supergraph.scopes);

  app.decorate("ledger", security.ledger);
  app.decorateRequest("outcome", null);
  app.decorateRequest("counted", false);
  echoRequestId(app);
  const audit = security.ledger instanceof AuditLedger ? security.ledger : null;
  const metrics = new GatewayMetrics({
    departmentsUp: () =>
      Object.fromEntries(
        DEPARTMENTS.map((department) => [department, clients[department].circuit === "closed"]),
      ),
    ledgerUp: () => security.ledger.available,
    ...(audit ? { ledgerStatus: () => audit.status() } : {}),
  });
  if (audit) audit.observer = metrics.ledger;
  const clients = Object.fromEntries(
    DEPARTMENTS.map((department) => [
      department,
      new DepartmentClient({
        department,
        url: config.departments[department].url,
        timeoutMs: config.departments[department].timeoutMs,
        secret: departmentSecret(department),
        retries: config.retries,
        connections: config.connectionsPerDepartment,
        breakerResetMs: config.breakerResetMs,
        observer: metrics.department(department),
      }),
    ]),
  ) as Record<Department, DepartmentClient>;

  // Platform subgraphs answer in-process; their resolvers may run operations over the graph.
  let executeInternal: PlatformServices["execute"] = async () => {
    throw new Error("the gateway is not loaded yet");
  };
  const services: PlatformServices = {
    execute: (query, variables, context) => executeInternal(query, variables, context),
    config,
    dataDir: config.dataDir,
    log: app.log,
    ledger: security.ledger,
    routeOptions: () => security.routeOptions(),
    verdicts: metrics.verification,
  };
  const localSubgraphs = Object.fromEntries(
    PLATFORM_SUBGRAPHS.map((name) => [name, platformSubgraphs[name](services)]),
  ) as Record<PlatformSubgraphName, LocalSubgraph>;

  const logger = apolloLogger(app);
  const federation = new Federation({
    supergraphSdl: supergraph.plannerSdl,
    logger,
    executor: config.executor,
    earlyLookups: config.earlyLookups,
    dataSources: (names) =>
      Object.fromEntries(
        names.map((name): [string, GraphQLDataSource] => {
          if (isDepartment(name)) return [name, clients[name]];
          const local = localSubgraphs[name as PlatformSubgraphName];
          if (!local) throw new Error(`supergraph names an unknown subgraph "${name}"`);
          const schema = buildSubgraphSchema({
            typeDefs: parse(subgraphSdl(name)),
            resolvers: { ...scalarResolvers, ...local.resolvers } as never,
          });
          return [name, new LocalGraphQLDataSource(schema)];
        }),
      ),
  });
  const apiSchema: GraphQLSchema = federation.apiSchema;
  installScalarRules(apiSchema);
  security.attachSchema(apiSchema, supergraph.scopes, supergraph.cost);
  const documents = new DocumentCache(apiSchema, {
    introspection: config.introspection,
    maxTokens: config.security.limits.maxTokens,
  });

  executeInternal = async (query, variables, context) => {
    const prepared = documents.get(query);
    if (!prepared.document || prepared.errors.length > 0) return { errors: prepared.errors };
    const operation = selectOperation(prepared.document, undefined);
    if (!("kind" in operation)) return { errors: [operation] };
    return federation.execute({
      query,
      document: prepared.document,
      operation,
      hash: prepared.hash,
      variables: variables ?? {},
      context,
    });
  };

  if (!config.production) {
    // Apollo Sandbox and tools on this machine run in a browser on another origin in
    // development. Not every origin: any web page a developer opens could otherwise call the
    // gateway with the published development key (every scope) and read what it holds.
    const origins = new Set(config.corsOrigins);
    const LOOPBACK = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;
    await app.register(cors, {
      origin: (origin, callback) =>
        callback(null, origin !== undefined && (origins.has(origin) || LOOPBACK.test(origin))),
      allowedHeaders: [
        "content-type",
        "authorization",
        "x-purpose",
        "x-case-id",
        "x-request-id",
        "apollographql-client-name",
      ],
      methods: ["GET", "POST", "OPTIONS"],
      maxAge: 600,
    });
  }

  const responseBuffers = new ResponseBuffers();
  async function handle(request: FastifyRequest, reply: FastifyReply) {
    const mediaType = responseMediaType(request.headers.accept);
    if (!mediaType) {
      return sendRequestError(reply, GRAPHQL_RESPONSE, 406, [
        {
          message: `Accept must allow ${GRAPHQL_RESPONSE} or application/json`,
          extensions: { code: ErrorCode.BadUserInput },
        },
      ]);
    }
    let params: GraphQLParams;
    try {
      security.persisted.resolve(request);
      params = readParams(request);
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      return sendRequestError(reply, mediaType, error.status, [
        { message: error.message, extensions: { code: error.code } },
      ]);
    }
    const { principal } = request;
    const overLimit = security.documentErrors(params.query);
    if (overLimit.length > 0) {
      return sendRequestError(reply, mediaType, documentErrorStatus(mediaType), overLimit);
    }
    const prepared = documents.get(params.query);
    if (!prepared.document || prepared.errors.length > 0) {
      return sendRequestError(reply, mediaType, documentErrorStatus(mediaType), prepared.errors);
    }
    const unregistered = security.unregisteredOperation(principal, prepared.hash);
    if (unregistered) {
      return sendRequestError(reply, mediaType, unregistered.status, unregistered.errors);
    }
    const operation = selectOperation(prepared.document, params.operationName);
    if (!("kind" in operation)) {
      return sendRequestError(reply, mediaType, documentErrorStatus(mediaType), [operation]);
    }
    if (operation.operation !== "query") {
      // The graph is read-only; GET must never change anything either (GraphQL over HTTP).
      return sendRequestError(
        reply,
        mediaType,
        405,
        [
          {
            message: `Only queries are served, not ${operation.operation}s`,
            extensions: { code: ErrorCode.BadUserInput },
          },
        ],
        { allow: "GET, POST" },
      );
    }

    // Apollo Server coerces variables before its gateway sees them; serving the executor
    // directly, the gateway does it here, so bad input never reaches a department.
    const coerced = getVariableValues(
      apiSchema,
      operation.variableDefinitions ?? [],
      params.variables ?? {},
    );
    if (coerced.errors) {
      return sendRequestError(
        reply,
        mediaType,
        documentErrorStatus(mediaType),
        coerced.errors.map((error) => ({
          ...formatError(error),
          message: variableErrorMessage(error),
          extensions: { code: ErrorCode.BadUserInput },
        })),
      );
    }

    // Fields the purpose may not see are removed here, before any department is called.
    const plan = security.authorize(
      prepared.document,
      params.query,
      prepared.hash,
      operation,
      principal,
    );
    if (!("document" in plan)) {
      return sendRequestError(reply, mediaType, documentErrorStatus(mediaType), plan);
    }
    const limits = security.limitErrors(plan, coerced.coerced, principal);
    if (limits.errors.length > 0) {
      return sendRequestError(reply, mediaType, documentErrorStatus(mediaType), limits.errors);
    }
    if (limits.cost !== null) metrics.estimatedCost(deskLabel(principal), limits.cost);

    const context = requestContext(String(request.id), principal, request.log);
    const preparedMs = reply.elapsedTime;
    const executing = performance.now();
    const result = await federation.execute({
      query: plan.query,
      document: plan.document,
      operation: plan.operation,
      hash: plan.hash,
      variables: params.variables ?? {},
      context,
    });
    const executed = performance.now();
    const completed = security.complete(result, plan, principal, coerced.coerced, context, {
      name: operation.name?.value ?? null,
      hash: prepared.hash,
    });
    const body: Record<string, unknown> = {};
    if (completed.errors.length > 0) body.errors = completed.errors.map(formatError);
    body.data = completed.data ?? null;
    request.outcome =
      completed.errors.length === 0
        ? "ok"
        : body.data !== null
          ? "partial"
          : String(
              (completed.errors[0] as { extensions?: { code?: unknown } } | undefined)?.extensions
                ?.code ?? ErrorCode.Internal,
            );
    // Serialised while the ledger writes; sent only once the accesses are durable. Encoded once
    // (a string body would be scanned for its length, then encoded again to write), and a large
    // answer in pieces into a reused buffer: no string of a few hundred KB in V8's large-object
    // space and no fresh buffer faulted in page by page for every batch.
    const { bytes, release } = jsonBody(body, responseBuffers);
    try {
      await completed.recorded;
    } catch (error) {
      release?.();
      if (!(error instanceof LedgerUnavailable)) throw error;
      return sendAuditUnavailable(reply, mediaType, error, request.log);
    }
    metrics.queryPhases(
      preparedMs / 1000,
      (executed - executing) / 1000,
      (performance.now() - executed) / 1000,
    );
    if (release) reply.raw.once("close", release);
    // A variable-coercion failure means nothing ran: that is a bad request, not a partial answer.
    const status = result.data === undefined && mediaType === GRAPHQL_RESPONSE ? 400 : 200;
    return reply.code(status).type(`${mediaType}; charset=utf-8`).send(bytes);
  }

  // Before the routes: Fastify binds a route to the error handler in force when it is added.
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, "request failed");
    // A failure of ours is INTERNAL_SERVER_ERROR whatever status it carries: a 503 here is not
    // the stop's (that one is answered before any handler runs).
    const code = status >= 500 ? ErrorCode.Internal : errorCodeOfStatus(status);
    request.outcome = code;
    const message = status >= 500 ? "Internal error in the gateway" : error.message;
    return reply
      .code(status)
      .type("application/json; charset=utf-8")
      .send({ errors: [{ message, extensions: { code } }] });
  });

  // Routes and methods nobody serves: the same error shape as everything else, with a code.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    return path === "/graphql"
      ? sendRequestError(
          reply,
          JSON_MEDIA,
          405,
          [
            {
              message: `${request.method} is not served at /graphql: GET or POST`,
              extensions: { code: ErrorCode.NotFound },
            },
          ],
          { allow: "GET, POST" },
        )
      : sendRequestError(reply, JSON_MEDIA, 404, [
          {
            message: `Nothing is served at ${path.slice(0, 200)}`,
            extensions: { code: ErrorCode.NotFound },
          },
        ]);
  });

  await security.register(app);
  // Every route of this context, whenever added. A HEAD (a load balancer's probe) is refused
  // with 405 and not counted: it would fill the anonymous series.
  const counted = (request: FastifyRequest): string | null => {
    const route = request.routeOptions.url;
    return route !== undefined && request.method !== "HEAD" && !UNCOUNTED_ROUTES.has(route)
      ? route
      : null;
  };
  // A client that leaves before its answer: counted when it leaves, as `aborted` (Fastify runs
  // no onResponse hook for it, and its onRequestAbort fires only while the body is being read).
  // Its reply may still end in an error event that reaches onResponse: `counted` keeps it from
  // being counted twice.
  app.addHook("onRequest", (request, reply, done) => {
    const route = counted(request);
    if (route !== null) {
      reply.raw.once("close", () => {
        if (reply.raw.writableFinished || request.counted) return;
        request.counted = true;
        metrics.abandoned(route, deskLabel(request.principal));
      });
    }
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    const route = counted(request);
    if (route !== null && !request.counted) {
      request.counted = true;
      metrics.request(
        route,
        deskLabel(request.principal),
        request.outcome ?? outcomeOfStatus(reply.statusCode),
        reply.elapsedTime / 1000,
      );
    }
    done();
  });
  app.route({
    method: ["GET", "POST"],
    url: "/graphql",
    // Not Fastify's HEAD beside GET: it would run the query (calling departments, recording
    // accesses) to send no answer.
    exposeHeadRoute: false,
    ...security.routeOptions(),
    handler: handle,
  });
  serveMetrics(app, {
    token: config.metricsToken,
    production: config.production,
    text: () => metrics.text(),
  });
  app.head("/graphql", (_request, reply) => reply.code(405).header("allow", "GET, POST").send());
  for (const local of Object.values(localSubgraphs)) await local.register?.(app);
  if (config.landingPage) registerLandingPage(app, { developmentHeaders: !config.production });

  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_request, reply) => {
    const departments = Object.fromEntries(
      DEPARTMENTS.map((department) => [
        department,
        clients[department].circuit === "closed"
          ? "reachable"
          : `circuit ${clients[department].circuit}`,
      ]),
    );
    // Without its audit ledger the gateway discloses nothing, so it is not ready.
    const audit = security.ledger.available ? "writing" : "unavailable";
    return reply.code(audit === "writing" ? 200 : 503).send({
      status: audit === "writing" ? "ready" : "not ready",
      supergraph: "loaded",
      audit,
      departments,
    });
  });

  app.addHook("onClose", async () => {
    for (const local of Object.values(localSubgraphs)) await local.close?.();
    await Promise.all(DEPARTMENTS.map((department) => clients[department].close()));
    await security.close();
  });
  return app;
}

/** Routes the request metrics leave out: probes, the metrics, the landing page and its files. */
const UNCOUNTED_ROUTES = new Set([
  "/health",
  "/ready",
  "/metrics",
  "/",
  "/graphiql/:file",
  "/.well-known/jwks.json",
]);

/**
 * A response's outcome from its status, where nothing named its error code: the jobs and verify
 * routes' own errors, the stop's 503, a method a route does not serve.
 */
function outcomeOfStatus(status: number): string {
  return status < 400 ? "ok" : errorCodeOfStatus(status);
}

/** A request's desk as the metrics name it: never a citizen's number. */
function deskLabel(principal: Principal | null | undefined): string {
  if (!principal) return "anonymous";
  return principal.deskId ?? principal.kind;
}

/**
 * A request Node's HTTP parser refused (a malformed request line, a bad Content-Length, headers
 * past 16 KiB) or whose headers never finished (Node's request timeout): answered in the
 * gateway's error shape, then the connection destroyed (an end alone leaves it half open for as
 * long as the client likes). A connection already gone gets nothing.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message, code] =
    error.code === "HPE_HEADER_OVERFLOW"
      ? [
          "431 Request Header Fields Too Large",
          "The request's headers are too large",
          ErrorCode.LimitExceeded,
        ]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? ["408 Request Timeout", "The request did not arrive in time", ErrorCode.BadUserInput]
        : ["400 Bad Request", "Malformed HTTP request", ErrorCode.BadUserInput];
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: ${JSON_MEDIA}; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * A variable's coercion error without the value: graphql-js writes the value whole into its
 * message (half a megabyte sent, half a megabyte back); the scalar's own reason names it briefly.
 */
function variableErrorMessage(error: GraphQLError): string {
  const variable = /^Variable "\$[^"]+"/.exec(error.message)?.[0];
  const reason = error.originalError?.message;
  let message = error.message;
  if (variable && reason) {
    // graphql-js: `Variable "$ids" got invalid value <value> at "ids[57]"; <reason>`: the
    // position kept, the value left out.
    const head = error.message.slice(0, error.message.lastIndexOf(`; ${reason}`));
    const at = / at "[^"]*"$/.exec(head)?.[0] ?? "";
    message = `${variable}${at} got an invalid value: ${reason}`;
  }
  // Built-in scalars quote the value in their reason too (`Int cannot represent …: "…"`).
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}
