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
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { GraphQLError, parse } from "graphql";
import mercurius from "mercurius";
import { DEPARTMENT_NAMES, type Department } from "./departments.ts";
import { ErrorCode } from "./errors.ts";
import { RequestLoaders } from "./loaders.ts";
import { scalarResolvers } from "./scalars.ts";
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
}

const schemaDir = fileURLToPath(new URL("../schema/", import.meta.url));

/** The SDL of a department's (or a platform) subgraph: `schema/<name>.graphql`. */
export function subgraphSdl(name: string): string {
  return readFileSync(`${schemaDir}${name}.graphql`, "utf8");
}

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: string;
  }
}

export function requestIdOptions(): Pick<FastifyServerOptions, "requestIdHeader" | "genReqId"> {
  return { requestIdHeader: "x-request-id", genReqId: () => randomUUID() };
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

export async function buildSubgraphServer(options: SubgraphOptions): Promise<FastifyInstance> {
  const { department } = options;
  const app = Fastify({
    logger: options.logger ?? { level: process.env.LOG_LEVEL ?? "info" },
    ...requestIdOptions(),
    bodyLimit: 16 * 1024 * 1024,
  });

  // Keep the raw body: the signature covers the exact bytes the gateway sent.
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    request.rawBody = body as string;
    try {
      const parsed = body === "" ? {} : JSON.parse(body as string);
      // GraphQL over HTTP allows `"extensions": null`; mercurius would refuse it.
      if (parsed && typeof parsed === "object" && parsed.extensions === null)
        delete parsed.extensions;
      done(null, parsed);
    } catch {
      const error = new Error("Request body is not valid JSON") as Error & { statusCode: number };
      error.statusCode = 400;
      done(error, undefined);
    }
  });

  echoRequestId(app);
  if (options.requireSignature ?? true) {
    const verifier = new SignatureVerifier(departmentSecret(department));
    app.addHook("preHandler", (request, reply, done) => {
      if (!request.url.startsWith("/graphql")) return done();
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
