/**
 * Persisted (trusted) operations. A manifest of registered operation documents, keyed by the
 * sha256 of their text — Apollo's persisted-query manifest format
 * (`{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id","name","type","body"}]}`)
 * or a plain `{"<sha256>": "<document>"}` map as Hive and Relay write them.
 *
 * A request may send `extensions.persistedQuery.sha256Hash` instead of the query text. A desk
 * registered with `persistedOperationsOnly` may run registered documents only (safelisting), so
 * a stolen key cannot be used to ask anything else.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { FastifyRequest } from "fastify";
import { RequestError } from "../http.ts";

export const PersistedCode = {
  NotFound: "PERSISTED_QUERY_NOT_FOUND",
  HashMismatch: "PERSISTED_QUERY_HASH_MISMATCH",
  NotInList: "PERSISTED_QUERY_NOT_IN_LIST",
} as const;

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export class PersistedOperations {
  constructor(private readonly documents: ReadonlyMap<string, string>) {}

  static empty(): PersistedOperations {
    return new PersistedOperations(new Map());
  }

  /**
   * An Apollo persisted-query manifest (`{ format: "apollo-persisted-query-manifest", version: 1,
   * operations: [{ id, body, … }] }`) or a map of sha256 → document. Anything else is refused
   * naming the file and the place: a desk restricted to registered operations would otherwise be
   * refused everything, or the gateway stop on a bare TypeError.
   */
  static fromFile(file: string): PersistedOperations {
    const refuse = (problem: string): never => {
      throw new Error(`registered operations ${file}: ${problem}`);
    };
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      return refuse(`cannot be read as JSON: ${(error as Error).message}`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return refuse("must be a manifest object or a map of sha256 → document");
    }
    const documents = new Map<string, string>();
    const add = (where: string, id: unknown, body: unknown) => {
      if (typeof id !== "string" || !/^[0-9a-f]{64}$/.test(id)) {
        refuse(`${where}: the id must be the document's sha256 (64 lower-case hex digits)`);
      }
      if (typeof body !== "string" || body.trim() === "") refuse(`${where}: has no document`);
      if (sha256(body as string) !== id) {
        refuse(`${where}: ${id} is not the sha256 of its document (${sha256(body as string)})`);
      }
      documents.set(id as string, body as string);
    };
    const object = raw as Record<string, unknown>;
    if ("format" in object || "operations" in object) {
      if (object.format !== "apollo-persisted-query-manifest") {
        refuse(
          `format must be "apollo-persisted-query-manifest", got ${JSON.stringify(object.format)}`,
        );
      }
      if (object.version !== 1) refuse(`version ${JSON.stringify(object.version)} is not 1`);
      if (!Array.isArray(object.operations)) refuse("operations must be a list");
      (object.operations as unknown[]).forEach((operation, index) => {
        if (typeof operation !== "object" || operation === null) {
          refuse(`operations[${index}] must be an object`);
        }
        const { id, body } = operation as { id?: unknown; body?: unknown };
        add(`operations[${index}]`, id, body);
      });
    } else {
      for (const [id, body] of Object.entries(object)) add(`"${id}"`, id, body);
    }
    return new PersistedOperations(documents);
  }

  get size(): number {
    return this.documents.size;
  }

  isRegistered(hash: string): boolean {
    return this.documents.has(hash);
  }

  /**
   * Puts the registered document into a request that names it only by hash, and checks a hash
   * sent next to a query. Throws a RequestError (400) for an unknown hash or a mismatch.
   */
  resolve(request: FastifyRequest): void {
    const container = (request.method === "GET" ? request.query : request.body) as
      | Record<string, unknown>
      | undefined;
    if (!container || typeof container !== "object") return;
    let extensions = container.extensions;
    if (typeof extensions === "string") {
      try {
        extensions = JSON.parse(extensions);
      } catch {
        return; // readParams reports malformed extensions
      }
    }
    const persisted = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | null)
      ?.persistedQuery;
    const hash = persisted?.sha256Hash;
    if (typeof hash !== "string") return;
    const query = container.query;
    if (typeof query === "string" && query !== "") {
      if (sha256(query) !== hash.toLowerCase()) {
        throw new RequestError(
          400,
          "extensions.persistedQuery.sha256Hash is not the sha256 of the query",
          PersistedCode.HashMismatch,
        );
      }
      return;
    }
    const document = this.documents.get(hash.toLowerCase());
    if (!document) {
      throw new RequestError(400, "PersistedQueryNotFound", PersistedCode.NotFound);
    }
    container.query = document;
  }
}
