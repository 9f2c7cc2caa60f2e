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

/**
 * Response text is built in pieces of about this many characters. A string over 128 KiB lives in
 * V8's large-object space, on pages mapped afresh for it: an answer of 150 KB written as one
 * string cost about a hundred page faults (a third of the household register's system time).
 */
const RESPONSE_PIECE_CHARS = 32 * 1024;

/** Values JSON.stringify leaves out of objects. */
function isOmitted(value: unknown): boolean {
  return value === undefined || typeof value === "function" || typeof value === "symbol";
}

/**
 * `JSON.stringify(value)` as pieces of about `RESPONSE_PIECE_CHARS`: the outer objects (response,
 * `data`) are written here and their lists (root fields, `_entities`) by JSON.stringify a slice of
 * elements at a time, the slice sized to give about a quarter of a piece. The pieces joined are
 * exactly the text JSON.stringify would give.
 */
export function jsonPieces(value: unknown, pieceChars = RESPONSE_PIECE_CHARS): string[] {
  const pieces: string[] = [];
  let current = "";
  const write = (text: string) => {
    current += text;
    if (current.length >= pieceChars) {
      pieces.push(current);
      current = "";
    }
  };
  const sliceChars = Math.max(1, pieceChars >> 2);
  const writeList = (list: readonly unknown[]) => {
    write("[");
    let step = 64;
    for (let start = 0; start < list.length; ) {
      const end = Math.min(list.length, start + step);
      // JSON.stringify of a slice writes its elements as it would within the whole list.
      const text = JSON.stringify(list.slice(start, end));
      write(`${start > 0 ? "," : ""}${text.slice(1, -1)}`);
      step = Math.max(1, Math.floor(((end - start) * sliceChars) / text.length));
      start = end;
    }
    write("]");
  };
  const writeValue = (item: unknown, depth: number) => {
    if (
      item === null ||
      typeof item !== "object" ||
      typeof (item as { toJSON?: unknown }).toJSON === "function"
    ) {
      write(JSON.stringify(item));
    } else if (Array.isArray(item)) {
      writeList(item);
    } else if (depth > 1) {
      write(JSON.stringify(item));
    } else {
      write("{");
      let first = true;
      for (const key of Object.keys(item)) {
        const property = (item as Record<string, unknown>)[key];
        if (isOmitted(property)) continue;
        write(`${first ? "" : ","}${JSON.stringify(key)}:`);
        first = false;
        writeValue(property, depth + 1);
      }
      write("}");
    }
  };
  writeValue(value, 0);
  if (current !== "" || pieces.length === 0) pieces.push(current);
  return pieces;
}

/**
 * Buffers for large responses, reused: a fresh buffer of a few hundred KB is mapped anew (and
 * faulted in page by page) on every response. A buffer comes back only when its response has
 * closed, when neither the socket nor anything else still reads it. At most `keep` buffers of at
 * most `largestKept` bytes are kept; a rare huge answer's buffer is left to the garbage collector.
 */
export class ResponseBuffers {
  private readonly free: Buffer[] = [];

  constructor(
    private readonly keep = 8,
    private readonly largestKept = 8 * 1024 * 1024,
  ) {}

  take(bytes: number): Buffer {
    const index = this.free.findIndex((buffer) => buffer.length >= bytes);
    if (index >= 0) return this.free.splice(index, 1)[0] as Buffer;
    // Powers of two from 256 KiB, so that a buffer serves the next responses of similar size.
    return Buffer.allocUnsafeSlow(2 ** Math.max(18, Math.ceil(Math.log2(bytes))));
  }

  give(buffer: Buffer): void {
    if (this.free.length < this.keep && buffer.length <= this.largestKept) this.free.push(buffer);
  }
}

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/**
 * How a GraphQL response is written. A successful answer with data only (every batch the gateway
 * asks for) is written by `jsonPieces`, into a reused buffer when it is large; anything else
 * (errors, other statuses) as mercurius's response schema serializes it.
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
      const pieces = jsonPieces(body);
      if (pieces.length === 1) return pieces[0] as string;
      let length = 0;
      for (const piece of pieces) length += Buffer.byteLength(piece);
      const buffer = buffers.take(length);
      let offset = 0;
      for (const piece of pieces) offset += buffer.write(piece, offset);
      reply.raw.once("close", () => buffers.give(buffer));
      return buffer.subarray(0, length);
    }
    const schemaSerializer = successful ? reply.getSerializationFunction("2xx") : undefined;
    return schemaSerializer
      ? schemaSerializer(payload as { [key: string]: unknown })
      : JSON.stringify(payload);
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
function resolveEntitiesInBatches(schema: GraphQLSchema): void {
  const field = schema.getQueryType()?.getFields()._entities;
  if (!field) return;
  const keyFields = entityKeyFields(schema);
  const resolve: GraphQLFieldResolver<
    unknown,
    SubgraphContext,
    { representations: Representation[] }
  > = (_source, { representations }, context, info) => {
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
  const responseBuffers = new ResponseBuffers();
  app.addHook("preHandler", (request, reply, done) => {
    // Fastify sends a Buffer from a serializer as it sends any Buffer payload.
    if (request.url.startsWith("/graphql")) {
      reply.serializer(
        graphQLResponseSerializer(reply, responseBuffers) as (payload: unknown) => string,
      );
    }
    done();
  });
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
  resolveEntitiesInBatches(schema);

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
