/**
 * Runs a query plan from Apollo's planner: root fetches, entity fetches flattened over the
 * answers so far, in sequence and in parallel, merging every department's answer into one tree
 * that `result-shaping` then turns into the response.
 *
 * It follows `@apollo/gateway`'s `executeQueryPlan` step for step (which representations are
 * sent, how answers merge, how a department's errors are re-pathed into the desk's response),
 * without what the gateway does not use: OpenTelemetry spans, usage-reporting traces, and the
 * per-request rebuilding of the operation in federation-internals' model. Plans with nodes it
 * does not run (`@defer`, subscriptions, data rewrites for interface objects and contexts) are
 * recognised by `supportsPlan` and left to Apollo's executor.
 */
import type { GraphQLDataSource } from "@apollo/gateway/dist/datasources/types.js";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types.js";
import type {
  FetchNode,
  PlanNode,
  QueryPlan,
  QueryPlanSelectionNode,
  ResponsePath,
  SequenceNode,
} from "@apollo/query-planner";
import { GraphQLError, type GraphQLSchema } from "graphql";
import {
  concernedObjects,
  departmentAnswerUnusable,
  type GatewayRequestContext,
} from "../department-client.ts";
import {
  confirms,
  type EarlyFetches,
  earlyFetchesOf,
  type Lookup,
  lookupKeys,
  lookupRepresentations,
} from "./early-lookups.ts";

type Data = Record<string, unknown>;

export interface PlanRequest {
  /** As sent, with the operation's defaults for those not sent (see Federation.execute). */
  variables: Record<string, unknown>;
  context: GatewayRequestContext;
  /** Handed to data sources as Apollo would (the incoming request). */
  incomingRequestContext: unknown;
}

interface Cursor {
  path: ResponsePath;
  data: unknown;
}

interface Execution {
  request: PlanRequest;
  errors: GraphQLError[];
  root: Data;
  /**
   * Representations made in the current synchronous turn, by path and `requires`: the fetches
   * of a Parallel node start in one turn, before any answer can be merged, so fetches of the same
   * entities for the same key (traffic, tax and social for `people.@`) see the same data and
   * can send the same list. Valid while no answer has been merged since (`merges`); dropped at
   * the turn's end.
   */
  representations: Map<string, { owners: Data[]; representations: Data[]; merges: number }> | null;
  /** Answers merged into the data so far. */
  merges: number;
  /** Entity fetches started beside their root fetch (see `early-lookups.ts`), by plan node. */
  early: Map<FetchNode, EarlyFetch> | null;
}

/** A department's answer to a fetch, or why there is none; never a rejected promise. */
type Settled = { response: DepartmentResponse } | { error: unknown };

interface DepartmentResponse {
  data?: Data | null;
  errors?: ReadonlyArray<DepartmentWireError>;
}

/** An entity fetch sent before the root fetch it follows had answered. */
interface EarlyFetch {
  lookup: Lookup;
  keys: ReadonlyArray<string | number>;
  /** The request's context with its own department sets, merged in only if the answer is used. */
  context: GatewayRequestContext;
  answer: Promise<Settled>;
  /** Set once the root fetch's answer confirmed the lookup. */
  confirmed: boolean;
}

/** Whether every node of the plan is one this executor runs; otherwise Apollo's executor does. */
export function supportsPlan(plan: QueryPlan): boolean {
  const supported = (node: PlanNode): boolean => {
    switch (node.kind) {
      case "Sequence":
      case "Parallel":
        return node.nodes.every(supported);
      case "Flatten":
        return supported(node.node);
      case "Condition":
        return (
          (!node.ifClause || supported(node.ifClause)) &&
          (!node.elseClause || supported(node.elseClause))
        );
      case "Fetch":
        return (
          !node.hasDefers &&
          !node.inputRewrites?.length &&
          !node.outputRewrites?.length &&
          !node.contextRewrites?.length
        );
      default:
        return false;
    }
  };
  return !plan.node || (plan.node.kind !== "Subscription" && supported(plan.node));
}

export interface PlanExecutorOptions {
  /**
   * Start a lookup's entity fetches beside the root fetch they follow (default: on). Off, every
   * department but the first hears only of subjects the first one confirmed.
   */
  earlyLookups?: boolean;
}

export class PlanExecutor {
  /** Representation functions by `requires` (plans are cached, so their nodes are long-lived). */
  private readonly selectors = new WeakMap<
    readonly QueryPlanSelectionNode[],
    (source: unknown) => Data | null
  >();

  private readonly requiresKeys = new WeakMap<readonly QueryPlanSelectionNode[], string>();

  /** Early fetches by sequence (null: none), found once per cached plan. */
  private readonly earlyFetches = new WeakMap<SequenceNode, EarlyFetches | null>();

  private readonly earlyLookups: boolean;

  constructor(
    private readonly supergraphSchema: GraphQLSchema,
    private readonly dataSources: Record<string, GraphQLDataSource>,
    options: PlanExecutorOptions = {},
  ) {
    this.earlyLookups = options.earlyLookups ?? true;
  }

  /** Runs the plan; returns the merged (unshaped) data and the departments' errors. */
  async execute(
    plan: QueryPlan,
    request: PlanRequest,
  ): Promise<{ data: Data; errors: GraphQLError[] }> {
    const root: Data = {};
    const execution: Execution = {
      request,
      errors: [],
      root,
      representations: null,
      merges: 0,
      early: null,
    };
    if (plan.node && plan.node.kind !== "Subscription") {
      await this.node(execution, plan.node as PlanNode, { path: [], data: root });
    }
    return { data: root, errors: execution.errors };
  }

  private async node(execution: Execution, node: PlanNode, cursor: Cursor): Promise<void> {
    switch (node.kind) {
      case "Sequence": {
        // Lookups start their entity fetches now; the first step's answer confirms them.
        let early = cursor.path.length === 0 ? this.startEarly(execution, node) : null;
        for (const child of node.nodes) {
          await this.node(execution, child, cursor);
          if (early) {
            for (const fetch of early)
              fetch.confirmed = confirms(fetch.lookup, fetch.keys, execution.root);
            early = null;
          }
        }
        return;
      }
      case "Parallel":
        await Promise.all(node.nodes.map((child) => this.node(execution, child, cursor)));
        return;
      case "Flatten": {
        const data = flattenAt(cursor.data, node.path);
        if (data === undefined || data === null) return;
        await this.node(execution, node.node, { path: [...cursor.path, ...node.path], data });
        return;
      }
      case "Condition": {
        const branch =
          execution.request.variables[node.condition] === true ? node.ifClause : node.elseClause;
        if (branch) await this.node(execution, branch, cursor);
        return;
      }
      case "Fetch":
        try {
          await this.fetch(execution, node, cursor);
        } catch (error) {
          let failure: GraphQLError;
          if (error instanceof GraphQLError) failure = error;
          else {
            // The department's answer could not be merged (not one entity per representation…):
            // logged in full, reported to the desk as that department's facts missing.
            execution.request.context.log.warn(
              { department: node.serviceName, reason: (error as Error).message },
              "department answer unusable",
            );
            failure = departmentAnswerUnusable(node.serviceName, cursor.path);
          }
          // A fetch for every item of a list: the desk's error points at the list; the objects
          // it concerns are known here, for the audit and for telling which nulls it explains.
          if (cursor.path.includes("@")) {
            const concerned: ResponsePath[] = [];
            hydratePaths([], cursor.path, execution.root, concerned);
            concernedObjects.set(failure, concerned);
          }
          execution.errors.push(failure);
        }
        return;
      default:
        throw new Error(`query plan node ${node.kind} is not supported here`);
    }
  }

  private async fetch(execution: Execution, fetch: FetchNode, cursor: Cursor): Promise<void> {
    const service = this.dataSources[fetch.serviceName];
    if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);
    const early = execution.early?.get(fetch);
    if (early?.confirmed) return this.mergeEarly(execution, fetch, cursor, early);
    const entities: Data[] = Array.isArray(cursor.data)
      ? (cursor.data.filter((entity) => entity !== null && entity !== undefined) as Data[])
      : [cursor.data as Data];
    if (entities.length === 0) return;

    const variables = fetchVariables(fetch, execution.request.variables);

    if (!fetch.requires) {
      const received = await this.send(execution, fetch, cursor, variables);
      execution.merges++;
      if (received) for (const entity of entities) merge(entity, received);
      return;
    }

    const { representations, owners } = this.representationsOf(
      execution,
      fetch.requires,
      cursor,
      entities,
    );
    if (representations.length === 0) return;
    if ("representations" in variables)
      throw new Error(`Variables cannot contain key "representations"`);
    variables.representations = representations;
    const received = await this.send(execution, fetch, cursor, variables);
    execution.merges++;
    mergeEntities(received, owners);
  }

  /**
   * Sends the early fetches of a sequence that starts with a lookup, with the representations the
   * lookup's keys make. Null when the sequence has none or the request's keys are not plain.
   */
  private startEarly(execution: Execution, sequence: SequenceNode): EarlyFetch[] | null {
    if (!this.earlyLookups) return null;
    let fetches = this.earlyFetches.get(sequence);
    if (fetches === undefined) {
      fetches = earlyFetchesOf(sequence, this.supergraphSchema);
      this.earlyFetches.set(sequence, fetches);
    }
    if (fetches === null) return null;
    const { request } = execution;
    const made = new Map<
      Lookup,
      { keys: ReadonlyArray<string | number>; representations: Data[] } | null
    >();
    const started: EarlyFetch[] = [];
    for (const [fetch, lookup] of fetches) {
      let sent = made.get(lookup);
      if (sent === undefined) {
        const keys = lookupKeys(lookup, request.variables);
        sent =
          keys && keys.length > 0
            ? { keys, representations: lookupRepresentations(lookup, keys) }
            : null;
        made.set(lookup, sent);
      }
      const service = this.dataSources[fetch.serviceName];
      if (!sent || !service) continue;
      const variables = fetchVariables(fetch, request.variables);
      if ("representations" in variables) continue;
      variables.representations = sent.representations;
      // Its own record of which departments answered: the desk's record names only those used.
      const context: GatewayRequestContext = {
        ...request.context,
        answered: new Set(),
        unavailable: new Set(),
      };
      const answer = service
        .process({
          kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
          request: { query: fetch.operation, variables, operationName: fetch.operationName },
          incomingRequestContext: request.incomingRequestContext as never,
          context,
          document: fetch.operationDocumentNode,
          pathInIncomingRequest: lookup.list ? [lookup.responseKey, "@"] : [lookup.responseKey],
        } as never)
        .then(
          (response): Settled => ({ response: response as DepartmentResponse }),
          (error: unknown): Settled => ({ error }),
        );
      const early: EarlyFetch = { lookup, keys: sent.keys, context, answer, confirmed: false };
      execution.early ??= new Map();
      execution.early.set(fetch, early);
      started.push(early);
    }
    return started.length > 0 ? started : null;
  }

  /**
   * Merges a confirmed early fetch's answer as `fetch` would have merged its own: the same
   * entities, errors re-pathed to them; answers about null elements (unknown subjects, which the
   * planner's step would not have asked about) are dropped.
   */
  private async mergeEarly(
    execution: Execution,
    fetch: FetchNode,
    cursor: Cursor,
    early: EarlyFetch,
  ): Promise<void> {
    const answer = execution.root[early.lookup.responseKey];
    const owners = (early.lookup.list ? answer : [answer]) as Array<Data | null>;
    // Nobody the register knows: the planned step would have asked nothing.
    if (!owners.some((owner) => owner)) return;
    const settled = await early.answer;
    const { context } = execution.request;
    for (const department of early.context.answered) context.answered.add(department);
    for (const department of early.context.unavailable) context.unavailable.add(department);
    if ("error" in settled) throw settled.error;
    const { response } = settled;
    for (const error of response.errors ?? []) {
      const index = error.path?.[1];
      let path: ResponsePath | undefined;
      if (fetch.requires && typeof index === "number") {
        if (!owners[index]) continue;
        const rest = (error.path as ReadonlyArray<string | number>).slice(2);
        path = early.lookup.list
          ? [early.lookup.responseKey, index, ...rest]
          : [early.lookup.responseKey, ...rest];
      } else {
        path = error.path ? [...cursor.path, ...error.path] : undefined;
      }
      execution.errors.push(departmentError(error, fetch.serviceName, () => path));
    }
    execution.merges++;
    mergeEntities(response.data, owners);
  }

  private async send(
    execution: Execution,
    fetch: FetchNode,
    cursor: Cursor,
    variables: Record<string, unknown>,
  ): Promise<Data | null | undefined> {
    const service = this.dataSources[fetch.serviceName] as GraphQLDataSource;
    const response = await service.process({
      kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
      request: { query: fetch.operation, variables, operationName: fetch.operationName },
      incomingRequestContext: execution.request.incomingRequestContext as never,
      context: execution.request.context,
      document: fetch.operationDocumentNode,
      pathInIncomingRequest: cursor.path,
    } as never);
    if (response.errors) {
      const pathOf = errorPaths(fetch, cursor, execution.root);
      for (const error of response.errors) {
        execution.errors.push(departmentError(error, fetch.serviceName, pathOf));
      }
    }
    return response.data as Data | null | undefined;
  }

  /** The representations of `entities` for `requires`, and the entities they stand for. */
  private representationsOf(
    execution: Execution,
    requires: readonly QueryPlanSelectionNode[],
    cursor: Cursor,
    entities: Data[],
  ): { owners: Data[]; representations: Data[] } {
    const key = `${cursor.path.join("\u0000")}\u0001${this.requiresKey(requires)}`;
    const made = execution.representations?.get(key);
    if (made && made.merges === execution.merges) return made;
    const representations: Data[] = [];
    const owners: Data[] = [];
    const select = this.selector(requires);
    for (const entity of entities) {
      const representation = select(entity);
      if (representation?.__typename) {
        representations.push(representation);
        owners.push(entity);
      }
    }
    if (execution.representations === null) {
      execution.representations = new Map();
      queueMicrotask(() => {
        execution.representations = null;
      });
    }
    execution.representations.set(key, { owners, representations, merges: execution.merges });
    return { owners, representations };
  }

  /** `requires` as text: fetches of different plan nodes may require the same fields. */
  private requiresKey(requires: readonly QueryPlanSelectionNode[]): string {
    let key = this.requiresKeys.get(requires);
    if (key === undefined) {
      key = JSON.stringify(requires);
      this.requiresKeys.set(requires, key);
    }
    return key;
  }

  /**
   * The representation function of a fetch's `requires`, made once per plan. The usual
   * `... on Person { __typename id }` gets a function that copies those fields (three entity
   * fetches over 1,000 persons cost 3,000 calls, each of which built two objects and merged
   * them in the general walk); anything else walks the selections as Apollo does.
   */
  private selector(requires: readonly QueryPlanSelectionNode[]): (source: unknown) => Data | null {
    let select = this.selectors.get(requires);
    if (!select) {
      select =
        flatFragmentSelector(requires, (object, type) => this.isOfType(object, type)) ??
        ((source) => this.select(source, requires));
      this.selectors.set(requires, select);
    }
    return select;
  }

  /** A representation: the fields `requires` names, or null when the entity lacks one. */
  private select(source: unknown, selections: readonly QueryPlanSelectionNode[]): Data | null {
    if (source === null || source === undefined) return null;
    const object = source as Data;
    const result: Data = {};
    for (const selection of selections) {
      if (selection.kind === "Field") {
        const key = selection.alias ?? selection.name;
        const value = Object.hasOwn(object, key) ? object[key] : undefined;
        if (value === undefined) return null;
        const subselections = selection.selections;
        if (Array.isArray(value)) {
          result[key] = value.map((element) =>
            subselections ? this.select(element, subselections) : element,
          );
        } else {
          result[key] = subselections ? this.select(value, subselections) : value;
        }
      } else if (selection.typeCondition && this.isOfType(object, selection.typeCondition)) {
        merge(result, this.select(object, selection.selections));
      }
    }
    return result;
  }

  private isOfType(object: Data, typeCondition: string): boolean {
    const typename = object.__typename;
    if (typeof typename !== "string" || typename === "") return false;
    if (typename === typeCondition) return true;
    const type = this.supergraphSchema.getType(typename);
    const condition = this.supergraphSchema.getType(typeCondition);
    if (!type || !condition || !("getFields" in type)) return false;
    return this.supergraphSchema.isSubType(condition as never, type as never);
  }
}

/**
 * `select` specialised for `requires` of one inline fragment of leaf fields, the shape of every
 * entity fetch by key; null for any other shape. It answers what the general walk answers: `{}`
 * (no `__typename`, so the entity is skipped) when the type does not match or a field is missing,
 * otherwise a copy of the fields, lists copied.
 */
function flatFragmentSelector(
  requires: readonly QueryPlanSelectionNode[],
  isOfType: (object: Data, type: string) => boolean,
): ((source: unknown) => Data | null) | null {
  const fragment = requires.length === 1 ? requires[0] : undefined;
  if (fragment?.kind !== "InlineFragment" || !fragment.typeCondition) return null;
  const keys: string[] = [];
  for (const selection of fragment.selections) {
    if (selection.kind !== "Field" || selection.selections) return null;
    const key = selection.alias ?? selection.name;
    // Written with plain assignment below: keys a plain object inherits go the general way.
    if (INHERITED.has(key)) return null;
    keys.push(key);
  }
  const type = fragment.typeCondition;
  return (source) => {
    if (source === null || source === undefined) return null;
    const object = source as Data;
    if (!isOfType(object, type)) return {};
    const representation: Data = {};
    for (const key of keys) {
      const value = Object.hasOwn(object, key) ? object[key] : undefined;
      if (value === undefined) return {};
      representation[key] = Array.isArray(value) ? value.slice() : value;
    }
    return representation;
  };
}

/**
 * Merges an `_entities` answer into the entities its representations stood for, one per
 * representation and in order; a null owner (an early lookup's unknown subject) takes nothing.
 */
function mergeEntities(
  received: Data | null | undefined,
  owners: ReadonlyArray<Data | null>,
): void {
  if (!received) return;
  const answered = received._entities;
  if (!Array.isArray(answered))
    throw new Error(`Expected "data._entities" in response to be an array`);
  if (answered.length !== owners.length) {
    throw new Error(`Expected "data._entities" to contain ${owners.length} elements`);
  }
  for (let index = 0; index < owners.length; index++) {
    const owner = owners[index];
    if (!owner) continue;
    const entity = answered[index] as Data | null;
    if (entity && !entity.__typename) entity.__typename = owner.__typename;
    merge(owner, entity);
  }
}

/** The request's variables that a fetch's operation uses. */
function fetchVariables(
  fetch: FetchNode,
  provided: Record<string, unknown>,
): Record<string, unknown> {
  const variables: Record<string, unknown> = {};
  for (const name of fetch.variableUsages ?? []) {
    if (Object.hasOwn(provided, name) && provided[name] !== undefined) {
      variables[name] = provided[name];
    }
  }
  return variables;
}

/** The values at `path` below `value`, lists flattened where the path says `@`. */
function flattenAt(value: unknown, path: ResponsePath): unknown {
  let current = value;
  for (let index = 0; index < path.length; index++) {
    if (current === undefined || current === null) return current;
    const key = path[index];
    if (key === "@") {
      // The last `@` (the usual `people.@`): each element as it is, lists spread one level. The
      // list itself when it holds no list (read, never written): `flat()` costs 60 µs per 1,000.
      if (index === path.length - 1) {
        const list = current as unknown[];
        return list.some(Array.isArray) ? list.flat() : list;
      }
      const rest = path.slice(index + 1);
      return (current as unknown[]).flatMap((element) => flattenAt(element, rest));
    }
    current = Object.hasOwn(current as Data, key as string)
      ? (current as Data)[key as string]
      : undefined;
  }
  return current;
}

function isObject(value: unknown): value is Data {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Keys that a plain object inherits: read and written only as own properties. */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Apollo's `deepMerge`: objects merged key by key, lists of equal length element by element. */
function merge(target: Data, source: Data | null | undefined): void {
  if (source === undefined || source === null) return;
  for (const key of Object.keys(source)) {
    const value = source[key];
    if (value === undefined) continue;
    if (INHERITED.has(key)) {
      // `__proto__` or `constructor` as a response key: never touch the prototype chain.
      Object.defineProperty(target, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      continue;
    }
    const existing = target[key];
    if (existing && isObject(value)) {
      merge(existing as Data, value);
    } else if (
      Array.isArray(value) &&
      Array.isArray(existing) &&
      value.length === existing.length
    ) {
      for (let index = 0; index < value.length; index++) {
        if (isObject(existing[index]) && isObject(value[index])) {
          merge(existing[index] as Data, value[index] as Data);
        } else {
          existing[index] = value[index];
        }
      }
    } else {
      target[key] = value;
    }
  }
}

/**
 * How a department error's path becomes a path in the desk's response: an `_entities` error
 * points at the entity it concerns (`_entities.3.x` → `people.7.x`), a root error is prefixed
 * with where the fetch sits. As Apollo's `makeLazyErrorPathGenerator`.
 */
function errorPaths(fetch: FetchNode, cursor: Cursor, root: Data) {
  let hydrated: ResponsePath[] | null = null;
  return (path: ReadonlyArray<string | number> | undefined): ResponsePath | undefined => {
    if (fetch.requires && typeof path?.[1] === "number") {
      if (!hydrated) {
        hydrated = [];
        hydratePaths([], cursor.path, root, hydrated);
      }
      return [...(hydrated[path[1]] ?? []), ...path.slice(2)];
    }
    return path ? [...cursor.path, ...path] : undefined;
  };
}

function hydratePaths(
  parent: ResponsePath,
  path: ResponsePath,
  data: unknown,
  result: ResponsePath[],
): void {
  if (data === null || data === undefined) return;
  const head = path[0];
  if (head === undefined) {
    result.push([...parent]);
  } else if (head === "@") {
    (data as unknown[]).forEach((value, index) => {
      hydratePaths([...parent, index], path.slice(1), value, result);
    });
  } else if (Array.isArray(data)) {
    data.forEach((value, index) => {
      hydratePaths([...parent, index], path, value, result);
    });
  } else if (Object.hasOwn(data as Data, head as string)) {
    hydratePaths([...parent, head], path.slice(1), (data as Data)[head as string], result);
  }
}

interface DepartmentWireError {
  message?: string;
  path?: ReadonlyArray<string | number>;
  extensions?: Record<string, unknown>;
}

/**
 * What of a department's error extensions reaches a desk: its code and what names the input at
 * fault. The rest (a stack trace, an exception's details, a database path) stays behind: the
 * departments send nothing else, and one that does must not reach desks through the gateway.
 */
const PASSED_EXTENSIONS = new Set(["code", "argument", "value", "department"]);

/** A department's error as the desk sees it: re-pathed, naming the service, with a code. */
function departmentError(
  error: DepartmentWireError,
  serviceName: string,
  pathOf: (path: ReadonlyArray<string | number> | undefined) => ResponsePath | undefined,
): GraphQLError {
  const extensions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error.extensions ?? {})) {
    if (PASSED_EXTENSIONS.has(key) && typeof value === "string") extensions[key] = value;
  }
  const path = pathOf(error.path);
  return new GraphQLError(
    error.message || `Error while fetching subquery from service "${serviceName}"`,
    {
      ...(path ? { path } : {}),
      extensions: {
        ...extensions,
        serviceName,
        code: extensions.code ?? "DOWNSTREAM_SERVICE_ERROR",
      },
    },
  );
}
