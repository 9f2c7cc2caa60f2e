/**
 * The federated graph as the gateway serves it: Apollo's supergraph model and query planner
 * (composition and planning stay Apollo's, so plans are exactly the ones `@apollo/gateway`
 * makes), a plan cache, and execution by `PlanExecutor` + compiled result shaping — or, for the
 * rare operation those leave out, by `@apollo/gateway`'s own `executeQueryPlan`.
 */

import { operationFromDocument, Supergraph } from "@apollo/federation-internals";
import type { GraphQLDataSource } from "@apollo/gateway/dist/datasources/types.js";
import { buildOperationContext } from "@apollo/gateway/dist/operationContext.js";
import { type QueryPlan, QueryPlanner } from "@apollo/query-planner";
import {
  type DocumentNode,
  type ExecutionResult,
  GraphQLError,
  type GraphQLSchema,
  isInputType,
  type OperationDefinitionNode,
  typeFromAST,
  valueFromAST,
} from "graphql";
import { LRUCache } from "lru-cache";
import { isProduction } from "../../common/environment.ts";
import { ErrorCode } from "../../common/errors.ts";
import { type GatewayRequestContext, pathsConcerned } from "../department-client.ts";
import { PlanExecutor, supportsPlan } from "./plan-executor.ts";
import { type CompiledShape, compileShape } from "./result-shaping.ts";

/**
 * Where a result with errors carries the departments' answer as merged, before null
 * propagation; absent when nothing was nulled by an error (or Apollo's executor ran).
 */
export const UNSHAPED_DATA = Symbol("unshaped data");

export interface FederatedRequest {
  /** The document text (as the desk sent it, or as authorization rewrote it). */
  query: string;
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** sha256 of `query`: with the operation name, the plan cache key. */
  hash: string;
  /** The request's variables as sent (departments receive them as sent). */
  variables: Record<string, unknown>;
  context: GatewayRequestContext;
}

interface PreparedPlan {
  plan: QueryPlan;
  /** Null when the plan or the operation needs Apollo's executor. */
  shape: CompiledShape | null;
  /** The operation's variable defaults, as JSON values; null when it declares none. */
  defaults: Record<string, unknown> | null;
}

/**
 * What a desk that leaves out a variable with a default means: the default, as the value it
 * would have sent. Departments receive the variables their fetches use, so a default left to
 * them would be lost (their operations declare the variable without it).
 */
function variableDefaults(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
): Record<string, unknown> | null {
  let defaults: Record<string, unknown> | null = null;
  for (const definition of operation.variableDefinitions ?? []) {
    if (!definition.defaultValue) continue;
    // Read with the variable's type: an ID written as a number of 18 digits is its digits, not
    // the nearest double (validation has checked the default against the type).
    const type = typeFromAST(schema, definition.type);
    const value =
      type && isInputType(type) ? valueFromAST(definition.defaultValue, type) : undefined;
    if (value === undefined) continue;
    defaults ??= {};
    defaults[definition.variable.name.value] = value;
  }
  return defaults;
}

export interface FederationOptions {
  /** The supergraph SDL as Apollo's planner accepts it. */
  supergraphSdl: string;
  /** Subgraph name → how it is reached. */
  dataSources: (names: string[]) => Record<string, GraphQLDataSource>;
  logger: {
    debug(message: unknown): void;
    info(message: unknown): void;
    warn(message: unknown): void;
    error(message: unknown): void;
  };
  /** Plans kept (one per distinct operation; authorization makes one per purpose). */
  maxPlans?: number;
  /** `apollo`: every plan through `@apollo/gateway`'s executor (to compare; default `compiled`). */
  executor?: "compiled" | "apollo";
  /** Start a lookup's entity fetches beside its root fetch (see `early-lookups.ts`; default on). */
  earlyLookups?: boolean;
}

export class Federation {
  /** The graph desks see (graphql-js), without federation's internals. */
  readonly apiSchema: GraphQLSchema;
  private readonly supergraph: Supergraph;
  private readonly supergraphSchema: GraphQLSchema;
  private readonly planner: QueryPlanner;
  private readonly dataSources: Record<string, GraphQLDataSource>;
  private readonly executor: PlanExecutor;
  private readonly plans: LRUCache<string, PreparedPlan>;
  private readonly logger: FederationOptions["logger"];
  private readonly compiled: boolean;

  constructor(options: FederationOptions) {
    this.supergraph = Supergraph.build(options.supergraphSdl, {
      validateSupergraph: !isProduction(),
    });
    this.apiSchema = this.supergraph.apiSchema().toGraphQLJSSchema();
    this.supergraphSchema = this.supergraph.schema.toGraphQLJSSchema();
    this.planner = new QueryPlanner(this.supergraph);
    this.dataSources = options.dataSources(
      this.supergraph.subgraphsMetadata().map(({ name }) => name),
    );
    this.executor = new PlanExecutor(this.supergraphSchema, this.dataSources, {
      earlyLookups: options.earlyLookups ?? true,
    });
    this.plans = new LRUCache({ max: options.maxPlans ?? 2000 });
    this.logger = options.logger;
    this.compiled = options.executor !== "apollo";
  }

  /** Subgraph names of the supergraph. */
  get subgraphNames(): string[] {
    return Object.keys(this.dataSources);
  }

  /** The plan Apollo's planner makes for an operation (cached). */
  prepare(request: Pick<FederatedRequest, "document" | "operation" | "hash">): PreparedPlan {
    const name = request.operation.name?.value ?? "";
    const key = `${request.hash}\u0000${name}`;
    let prepared = this.plans.get(key);
    if (!prepared) {
      const operation = operationFromDocument(this.supergraph.apiSchema(), request.document, {
        operationName: name || undefined,
      });
      const plan = this.planner.buildQueryPlan(operation);
      const shape =
        this.compiled && supportsPlan(plan)
          ? compileShape(this.apiSchema, request.document, request.operation)
          : null;
      prepared = { plan, shape, defaults: variableDefaults(this.apiSchema, request.operation) };
      this.plans.set(key, prepared);
    }
    return prepared;
  }

  async execute(sent: FederatedRequest): Promise<ExecutionResult> {
    const prepared = this.prepare(sent);
    // An explicit null stays null: only a variable left out takes its default.
    const request = prepared.defaults
      ? { ...sent, variables: { ...prepared.defaults, ...sent.variables } }
      : sent;
    if (!prepared.shape) return this.executeWithApollo(prepared.plan, request);
    const { data, errors } = await this.executor.execute(prepared.plan, {
      variables: request.variables,
      context: request.context,
      incomingRequestContext: {
        request: { variables: request.variables },
        context: request.context,
      },
    });
    let shaped: { data: Record<string, unknown> | null; errors: GraphQLError[] };
    try {
      shaped = prepared.shape.shape(data, request.variables);
    } catch (error) {
      // A bug: values the schema does not allow are reported by the shaper, not thrown.
      this.logger.warn(`result shaping failed: ${(error as Error).stack}`);
      return {
        data: null,
        errors: [
          new GraphQLError("The answer could not be assembled; see the gateway log", {
            extensions: { code: ErrorCode.Internal },
          }),
        ],
      };
    }
    if (errors.length === 0 && shaped.errors.length === 0) return { data: shaped.data };
    // Values the departments sent that the schema does not allow (a null for a non-null fact) are
    // reported unless a department's error at or above the same place explains them. Apollo's
    // gateway keeps them in `extensions.valueCompletion`, which no desk sees: a null would then
    // come without a word. With errors, the answer before they nulled its objects goes along:
    // the audit still finds there whose records a nulled object's facts were read from.
    const result: ExecutionResult & { [UNSHAPED_DATA]: unknown } = {
      data: shaped.data,
      errors:
        errors.length === 0
          ? shaped.errors
          : [...errors, ...shaped.errors.filter((error) => !explainedBy(errors, error.path))],
      [UNSHAPED_DATA]: data,
    };
    return result;
  }

  private async executeWithApollo(
    plan: QueryPlan,
    request: FederatedRequest,
  ): Promise<ExecutionResult> {
    // Loaded on first use: most deployments never need it, and it brings OpenTelemetry along.
    const { executeQueryPlan } = await import("@apollo/gateway/dist/executeQueryPlan.js");
    const operationName = request.operation.name?.value;
    const operationContext = buildOperationContext({
      schema: this.apiSchema,
      operationDocument: request.document,
      operationName,
    });
    const requestContext = {
      request: { query: request.query, operationName, variables: request.variables },
      document: request.document,
      source: request.query,
      operationName: operationName ?? null,
      operation: request.operation,
      schema: this.apiSchema,
      queryHash: request.hash,
      context: request.context,
      logger: this.logger,
      metrics: {},
      cache: undefined,
      overallCachePolicy: { replace() {}, restrict() {}, policyIfCacheable: () => null },
    };
    return executeQueryPlan(
      plan,
      this.dataSources,
      requestContext as never,
      operationContext,
      this.supergraphSchema,
      this.supergraph.apiSchema(),
    ) as unknown as Promise<ExecutionResult>;
  }
}

/**
 * Whether one of the departments' `errors` explains a value at `path`: it concerns the whole
 * answer (no path) or an object at or above that place (`pathsConcerned`: for a fetch for every
 * item of a list, the items' objects, not the whole list).
 */
function explainedBy(
  errors: readonly GraphQLError[],
  path: ReadonlyArray<string | number> | undefined,
): boolean {
  return errors.some((error) => {
    const concerned = pathsConcerned(error);
    if (concerned.length === 0) return true;
    return (
      path !== undefined &&
      concerned.some(
        (at) => at.length <= path.length && at.every((key, index) => key === path[index]),
      )
    );
  });
}
