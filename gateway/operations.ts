/**
 * Parsed and validated operations, cached by their text: a desk sends the same few documents
 * millions of times, so parsing and validation happen once per document, not once per request.
 */
import { createHash } from "node:crypto";
import {
  type ASTNode,
  BREAK,
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  NoSchemaIntrospectionCustomRule,
  type OperationDefinitionNode,
  parse,
  specifiedRules,
  type ValueNode,
  validate,
  visit,
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
    const errors = validate(this.schema, document, this.rules).map((error) => {
      // A scalar's own rule (a malformed Date) keeps its code and its words, and the argument
      // it was given for is named, as a department names an id's.
      const scalar = (error.originalError as { extensions?: Record<string, unknown> } | undefined)
        ?.extensions?.code;
      const node = error.nodes?.[0];
      const argument = scalar && node ? argumentHolding(document, node) : null;
      return new GraphQLError(scalar ? (error.originalError as Error).message : error.message, {
        nodes: error.nodes ?? null,
        extensions: {
          code: error.extensions?.code ?? scalar ?? "GRAPHQL_VALIDATION_FAILED",
          ...(argument ? { argument } : {}),
        },
      });
    });
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

/** The argument a literal value was written for: `on`, `ids[3]`, `filter.from`; null if none. */
export function argumentHolding(document: DocumentNode, target: ASTNode): string | null {
  const locate = (value: ValueNode, at: string): string | null => {
    if (value === target) return at;
    if (value.kind === Kind.LIST) {
      for (const [index, item] of value.values.entries()) {
        const found = locate(item, `${at}[${index}]`);
        if (found) return found;
      }
    } else if (value.kind === Kind.OBJECT) {
      for (const field of value.fields) {
        const found = locate(field.value, `${at}.${field.name.value}`);
        if (found) return found;
      }
    }
    return null;
  };
  let argument: string | null = null;
  visit(document, {
    Argument(node) {
      argument = locate(node.value, node.name.value);
      return argument ? BREAK : undefined;
    },
  });
  return argument;
}
