/**
 * Operation hardening: limits on tokens, depth, aliases (GraphQL Armor's rules, run as plain
 * validation rules because the gateway calls Apollo's executor directly) and on list arguments
 * (`people(ids:)`, `organizations(usccs:)`: their size is only known once variables are in).
 * Each refusal is a `LIMIT_EXCEEDED` error naming the limit; nothing is sent to a department.
 */
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import { MaxTokensParserWLexer } from "@escape.tech/graphql-armor-max-tokens";
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  type ValidationContext,
  validate,
} from "graphql";
import { LRUCache } from "lru-cache";
import { ErrorCode } from "../../common/errors.ts";
import type { OperationLimits } from "../config.ts";
import type { ListArgument } from "./operation-shape.ts";

function limitExceeded(message: string, limit: string, max: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: ErrorCode.LimitExceeded, limit, max },
  });
}

/** Armor reports "Syntax Error: <what>."; desks get the limit's own words. */
function armorMessage(error: { message: string }): string {
  return error.message.replace(/^Syntax Error: /, "");
}

export class DocumentLimits {
  /** Verdicts per document text: a desk sends the same few documents over and over. */
  private readonly verdicts = new LRUCache<string, readonly GraphQLError[]>({ max: 2000 });

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly limits: OperationLimits,
  ) {}

  /** Errors for a document over the token, depth or alias limit (empty when within them). */
  check(query: string): readonly GraphQLError[] {
    const cached = this.verdicts.get(query);
    if (cached) return cached;
    const verdict = this.evaluate(query);
    this.verdicts.set(query, verdict);
    return verdict;
  }

  private evaluate(query: string): readonly GraphQLError[] {
    const { maxTokens, maxDepth, maxAliases } = this.limits;
    let document: DocumentNode;
    let overTokens = false;
    try {
      document = new MaxTokensParserWLexer(query, {
        n: maxTokens,
        onReject: [() => (overTokens = true)],
      }).parseDocument();
    } catch (error) {
      if (overTokens) {
        return [limitExceeded(`${armorMessage(error as Error)}`, "tokens", maxTokens)];
      }
      return []; // a syntax error: the document cache reports it with its position
    }
    const errors: GraphQLError[] = [];
    const report =
      (limit: string, max: number) => (_context: ValidationContext | null, error: GraphQLError) =>
        errors.push(limitExceeded(armorMessage(error), limit, max));
    validate(this.schema, document, [
      maxDepthRule({
        n: maxDepth,
        propagateOnRejection: false,
        onReject: [report("depth", maxDepth)],
      }),
      maxAliasesRule({
        n: maxAliases,
        // Armor's default lets aliases named `__typename` go uncounted: `__typename: person(…)`
        // would be a lookup past the limit.
        allowList: [],
        propagateOnRejection: false,
        onReject: [report("aliases", maxAliases)],
      }),
    ]);
    return errors;
  }
}

/**
 * Errors for list arguments longer than the limit, once the variables are known: each argument,
 * and all of a request's together — aliases would otherwise multiply the limit (thirty aliased
 * `people(ids:)` of 1,000 each), and with them how many numbers one request can try.
 */
export function listSizeErrors(
  listArguments: readonly ListArgument[],
  variables: Record<string, unknown>,
  maxListSize: number,
): GraphQLError[] {
  const errors: GraphQLError[] = [];
  let total = 0;
  for (const { coordinate, argument } of listArguments) {
    const value = argument.value;
    const size =
      value.kind === Kind.LIST
        ? value.values.length
        : value.kind === Kind.VARIABLE && Array.isArray(variables[value.name.value])
          ? (variables[value.name.value] as unknown[]).length
          : 0;
    total += size;
    if (size > maxListSize) {
      const field = coordinate.split(".")[1];
      errors.push(
        new GraphQLError(
          `${field}(${argument.name.value}:) has ${size} elements; at most ${maxListSize} per request (send several requests)`,
          {
            extensions: {
              code: ErrorCode.LimitExceeded,
              limit: "listSize",
              max: maxListSize,
              argument: argument.name.value,
            },
          },
        ),
      );
    }
  }
  if (errors.length === 0 && total > maxListSize) {
    errors.push(
      new GraphQLError(
        `the list arguments of this request have ${total} elements in all; at most ${maxListSize} per request (send several requests)`,
        { extensions: { code: ErrorCode.LimitExceeded, limit: "listSize", max: maxListSize } },
      ),
    );
  }
  return errors;
}
