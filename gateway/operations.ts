/**
 * Parsed and validated operations, cached by their text: a desk sends the same few documents
 * millions of times, so parsing and validation happen once per document, not once per request.
 */
import { createHash } from "node:crypto";
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  NoSchemaIntrospectionCustomRule,
  type OperationDefinitionNode,
  parse,
  specifiedRules,
  validate,
} from "graphql";
import { LRUCache } from "lru-cache";
import { ErrorCode } from "../common/errors.ts";

export interface PreparedDocument {
  document: DocumentNode | null;
  /** Syntax or validation errors; the operation must not run when there are any. */
  errors: readonly GraphQLError[];
  /** sha256 of the document text, as Apollo's query-plan cache keys it. */
  hash: string;
}

export interface DocumentCacheOptions {
  introspection: boolean;
  maxDocuments?: number;
  /** Longest document accepted, in characters. */
  maxLength?: number;
  /** Lexical tokens past which parsing stops (`MAX_TOKENS`; the limits check counts the same). */
  maxTokens?: number;
}

export class DocumentCache {
  private readonly cache: LRUCache<string, PreparedDocument>;
  private readonly rules;
  private readonly maxTokens: number;

  constructor(
    private readonly schema: GraphQLSchema,
    options: DocumentCacheOptions,
  ) {
    this.cache = new LRUCache({ max: options.maxDocuments ?? 2000 });
    this.maxTokens = options.maxTokens ?? 5000;
    this.rules = options.introspection
      ? specifiedRules
      : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  }

  get(query: string): PreparedDocument {
    const cached = this.cache.get(query);
    if (cached) return cached;
    const prepared = this.prepare(query);
    this.cache.set(query, prepared);
    return prepared;
  }

  private prepare(query: string): PreparedDocument {
    const hash = createHash("sha256").update(query).digest("hex");
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.maxTokens });
    } catch (error) {
      const syntax = error as GraphQLError;
      return {
        document: null,
        hash,
        errors: [
          new GraphQLError(syntax.message, {
            source: syntax.source ?? null,
            positions: syntax.positions ?? null,
            extensions: { code: "GRAPHQL_PARSE_FAILED" },
          }),
        ],
      };
    }
    const errors = validate(this.schema, document, this.rules).map(
      (error) =>
        new GraphQLError(error.message, {
          nodes: error.nodes ?? null,
          // A scalar's own rule (a malformed Date) keeps its BAD_USER_INPUT code.
          extensions: {
            code:
              error.extensions?.code ??
              (error.originalError as GraphQLError | undefined)?.extensions?.code ??
              "GRAPHQL_VALIDATION_FAILED",
          },
        }),
    );
    return { document, errors, hash };
  }
}

/** The operation a request names (or its only one), or an error a desk can act on. */
export function selectOperation(
  document: DocumentNode,
  operationName: string | undefined,
): OperationDefinitionNode | GraphQLError {
  const operation = getOperationAST(document, operationName);
  if (operation) return operation;
  return new GraphQLError(
    operationName
      ? `Unknown operation named "${operationName}"`
      : "Must provide operation name if query contains multiple operations",
    { extensions: { code: ErrorCode.BadUserInput } },
  );
}
