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

  static fromFile(file: string): PersistedOperations {
    const raw = JSON.parse(readFileSync(file, "utf8")) as unknown;
    const documents = new Map<string, string>();
    const add = (id: string, body: unknown) => {
      if (typeof body !== "string") throw new Error(`${file}: operation ${id} has no body`);
      if (sha256(body) !== id) {
        throw new Error(`${file}: operation ${id} is not the sha256 of its body (${sha256(body)})`);
      }
      documents.set(id, body);
    };
    const manifest = raw as { format?: string; operations?: Array<{ id: string; body: unknown }> };
    if (
      manifest.format === "apollo-persisted-query-manifest" &&
      Array.isArray(manifest.operations)
    ) {
      for (const operation of manifest.operations) add(operation.id, operation.body);
    } else if (typeof raw === "object" && raw !== null) {
      for (const [id, body] of Object.entries(raw)) add(id, body);
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
