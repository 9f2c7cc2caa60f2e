/**
 * How the gateway talks to a department: a keep-alive connection pool (undici), every request
 * signed for that department, a per-department timeout, retries with backoff for these read-only
 * fetches, and a circuit breaker so that a dead department costs microseconds, not the timeout.
 * Failures become a DEPARTMENT_UNAVAILABLE error naming the department — never its URL.
 *
 * Fetches of concurrent client requests are coalesced: a department answers one request about
 * thirty persons far more cheaply than thirty requests about one (one HTTP exchange, one
 * execution, one SQL statement per fact). Everything the planner asks of a department within a
 * few turns of the event loop (`gatherTurns`), and while that department is still busy with
 * earlier batches, goes out as one request:
 * - entity fetches with the same operation and the same other variables become one `_entities`
 *   call over the concatenated representations; each caller gets its slice back, and errors
 *   whose path points into a slice are renumbered for that caller (the `_entities` contract:
 *   one entity per representation, in order);
 * - root fetches with the same operation (e.g. `person(id:)` for different ids) become one
 *   operation in which each caller's root fields are aliased and its variables renamed.
 * Should a merged answer lose its data as a whole (a non-null root field failed), every caller
 * is asked again on its own, so that one caller's bad input never costs another its answer.
 */
import type {
  GraphQLDataSource,
  GraphQLDataSourceProcessOptions,
} from "@apollo/gateway/dist/datasources/types.js";
import type { GatewayGraphQLResponse } from "@apollo/server-gateway-interface";
import {
  type DocumentNode,
  type FieldNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  parse,
  print,
  type SelectionNode,
  type VariableDefinitionNode,
  type VariableNode,
  visit,
} from "graphql";
import CircuitBreaker from "opossum";
import { type Dispatcher, Pool } from "undici";
import { DEPARTMENT_NAMES, type Department } from "../common/departments.ts";
import { ErrorCode } from "../common/errors.ts";
import { SIGNATURE_HEADER, signBody } from "../common/signing.ts";
import type { DepartmentObserver } from "./metrics.ts";
import type { Principal } from "./principal.ts";

export interface DepartmentClientOptions {
  department: Department;
  url: string;
  secret: string;
  /** Time allowed for one attempt (headers and body), ms. */
  timeoutMs: number;
  /** Further attempts after a failed one (connection refused, timeout, 5xx). */
  retries: number;
  /** Connections kept open to the department. */
  connections: number;
  /** Consecutive-failure share and time the breaker stays open. */
  breakerResetMs: number;
  /** Coalesce concurrent fetches (default: on). */
  coalesce?: boolean;
  /**
   * Batches in flight to the department at once; further fetches wait and join the next batch
   * (default 4). More parallel batches lower latency at light load; fewer make larger batches.
   */
  maxBatchesInFlight?: number;
  /**
   * Turns of the event loop a batch gathers fetches before it is sent (default 3). Under load
   * the requests of one wave of clients reach the gateway spread over consecutive polls for
   * I/O, and with one turn each poll's share went out as its own call; further turns let them
   * join (at 3,000 requests/s offered: 16–18 callers per department call instead of 9–11, and a
   * department call costs its department about the same whatever it asks). An idle loop runs
   * the extra turns at once: light load waits microseconds, not a timer.
   */
  gatherTurns?: number;
  /** Told of each call and retry (the gateway's metrics), when given. */
  observer?: DepartmentObserver;
  /**
   * Most representations (or listed ids) in one batch (default 1000): beyond that, merging saves
   * the department nothing and only grows every process's heap.
   */
  maxBatchSize?: number;
  /** Largest answer read (default `MAX_RESPONSE_BYTES`). */
  maxResponseBytes?: number;
}

/** Why a department's answer was not obtained; logged, never sent to a desk. */
/**
 * Largest department answer read: a batch of 1,000 persons' facts is a few hundred KB. Past this
 * the call fails (not retried) rather than grow the gateway's memory by what a broken department
 * sends.
 */
export const MAX_RESPONSE_BYTES = 64 << 20;

/** A department's answer as it came: its status and its body as text. */
interface Exchange {
  statusCode: number;
  text: string;
}

/**
 * One HTTP exchange, its body gathered by a dispatch handler of our own. It fails once the body
 * passes `max` bytes (not retried), or is still arriving `timeoutMs` after its headers (retried,
 * as a timeout is): the body within the timeout as a whole, not only between chunks (undici's
 * `bodyTimeout`), so that a department trickling a byte at a time cannot hold its call slot for
 * ever. Checked as chunks arrive, not by a timer (an `AbortSignal.timeout` costs ≈ 10 µs a call).
 *
 * Not undici's `request`, which hands every answer over as a Readable stream (read with `for
 * await`): the stream and its async iterator cost ≈ 20 µs of the ≈ 320 µs a department call cost
 * this client on the sixteenth machine (one department called back to back; see
 * docs/performance.md), and an interactive request makes about half a call.
 */
function exchange(
  pool: Pool,
  options: Dispatcher.DispatchOptions,
  max: number,
  timeoutMs: number,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let statusCode = 0;
    let deadline = Number.POSITIVE_INFINITY;
    let settled = false;
    const fail = (controller: Dispatcher.DispatchController, failure: DepartmentFailure) => {
      settled = true;
      controller.abort(failure);
      reject(failure);
    };
    pool.dispatch(options, {
      // undici tells a handler of this API from an older one by this method: it must be there.
      onRequestStart() {},
      onResponseStart(_controller, status) {
        statusCode = status;
        deadline = performance.now() + timeoutMs;
      },
      onResponseData(controller, chunk) {
        if (settled) return;
        length += chunk.length;
        if (length > max) {
          fail(
            controller,
            new DepartmentFailure(`the response is larger than ${max} bytes`, false),
          );
        } else if (performance.now() > deadline) {
          fail(
            controller,
            new DepartmentFailure("the response was still arriving at the timeout", true),
          );
        } else chunks.push(chunk);
      },
      onResponseEnd() {
        if (settled) return;
        settled = true;
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
        resolve({ statusCode, text: body.toString() });
      },
      onResponseError(_controller, error) {
        if (settled) return;
        settled = true;
        reject(error);
      },
    });
  });
}

/**
 * What is wrong with a parsed answer's shape, if anything: the executor reads `data` as an
 * object, `errors` as a list of errors and `_entities` as a list, and a department that answers
 * otherwise has not answered.
 */
function wireProblem(response: unknown): string | null {
  if (response === null || typeof response !== "object" || Array.isArray(response)) {
    return "the response is not a JSON object";
  }
  const { data, errors } = response as { data?: unknown; errors?: unknown };
  if (data !== undefined && data !== null && (typeof data !== "object" || Array.isArray(data))) {
    return '"data" is not an object';
  }
  if (errors !== undefined) {
    if (!Array.isArray(errors)) return '"errors" is not a list';
    for (const error of errors) {
      if (error === null || typeof error !== "object" || typeof error.message !== "string") {
        return '"errors" holds something other than errors';
      }
      if (error.path !== undefined && !Array.isArray(error.path))
        return "an error's path is not a list";
    }
  }
  if (data && "_entities" in data) {
    const entities = (data as { _entities: unknown })._entities;
    if (entities !== null && !Array.isArray(entities)) return '"_entities" is not a list';
    for (const entity of (entities as unknown[] | null) ?? []) {
      if (entity !== null && (typeof entity !== "object" || Array.isArray(entity))) {
        return '"_entities" holds something other than objects';
      }
    }
  }
  return null;
}

class DepartmentFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface GatewayRequestContext {
  requestId: string;
  /** Who is asking; set by the gateway before execution. */
  principal: Principal;
  /** Departments whose answer was not obtained during this request. */
  unavailable: Set<Department>;
  /** Departments that answered during this request. */
  answered: Set<Department>;
  log: { warn: (object: object, message: string) => void };
}

/** A fresh context for one request (or one job's batch) on behalf of `principal`. */
export function requestContext(
  requestId: string,
  principal: Principal,
  log: GatewayRequestContext["log"],
): GatewayRequestContext {
  return { requestId, principal, unavailable: new Set(), answered: new Set(), log };
}

export function departmentUnavailable(department: Department, path?: readonly (string | number)[]) {
  return missingFacts(department, "did not answer", path);
}

/**
 * A department's answer the gateway could not use (entities not one per representation, a value
 * of the wrong kind): its facts are missing as if it had not answered, with the same code.
 */
export function departmentAnswerUnusable(
  department: string,
  path?: readonly (string | number)[],
): GraphQLError {
  return missingFacts(department, "answered in a form the gateway cannot use", path);
}

/**
 * The objects a department's failure concerns, where its path cannot say: a fetch for every item
 * of a list fails with an error at the list (`people`), and these are the items' objects
 * (`people.0.spouse`, `people.4.spouse`, …) that miss its facts — for the audit (whose records
 * were asked about) and for telling which nulls it explains. Not sent to the desk.
 */
export const concernedObjects = new WeakMap<
  GraphQLError,
  ReadonlyArray<ReadonlyArray<string | number>>
>();

/**
 * The response paths an error concerns: the objects recorded in `concernedObjects`, else its own
 * path; none when it has no path (it concerns the whole response).
 */
export function pathsConcerned(error: {
  readonly path?: ReadonlyArray<string | number> | undefined;
}): ReadonlyArray<ReadonlyArray<string | number>> {
  const objects = concernedObjects.get(error as GraphQLError);
  if (objects) return objects;
  return error.path && error.path.length > 0 ? [error.path] : [];
}

/**
 * `DEPARTMENT_UNAVAILABLE`: the department's facts are missing from this response, and why.
 * `path` is the fetch's place in the response as the query planner names it, `@` standing for
 * every item of a list (`people.@.spouse`): the error's path ends before the first `@`, at the
 * list whose items miss the facts — a path with `@` left out (`people.spouse`) would lead
 * nowhere (the executor records which items' objects, `concernedObjects`). A root fetch has no
 * path of its own: the error then concerns the whole response.
 */
function missingFacts(
  department: string,
  what: string,
  planPath?: readonly (string | number)[],
): GraphQLError {
  const name = DEPARTMENT_NAMES[department as Department] ?? department;
  const list = planPath?.indexOf("@") ?? -1;
  const path = list >= 0 ? planPath?.slice(0, list) : planPath;
  return new GraphQLError(
    `Department "${department}" (${name}) ${what}; facts it holds are missing from this response`,
    {
      ...(path?.length ? { path } : {}),
      extensions: { code: ErrorCode.DepartmentUnavailable, department },
    },
  );
}

type Variables = Record<string, unknown>;

/** A subgraph error as it travels in a response. */
interface WireError {
  message: string;
  path?: Array<string | number>;
  [key: string]: unknown;
}

interface WireResponse {
  data?: Record<string, unknown> | null;
  errors?: WireError[];
  extensions?: Record<string, unknown>;
}

/** One department request as sent: body text and the request ids it serves. */
interface Outgoing {
  body: string;
  requestIds: string;
}

/** How a planner operation may be merged with others of the same text. */
type Shape =
  | { kind: "entities"; responseKey: string }
  | { kind: "root"; operation: OperationDefinitionNode }
  | { kind: "alone" };

interface Caller {
  variables: Variables;
  requestId: string;
  resolve: (response: WireResponse) => void;
  reject: (error: unknown) => void;
}

interface Batch {
  key: string;
  query: string;
  operationName: string | undefined;
  shape: Shape & { kind: "entities" | "root" };
  callers: Caller[];
  /** Representations (entity batches) or listed items (root batches) so far. */
  size: number;
}

/**
 * The slot counts of a merged root operation: powers of two and the halfway steps between them,
 * up to the most callers merged into one (its text grows with each slot).
 */
const MAX_ROOT_CALLERS = 64;
const ROOT_SLOTS: readonly number[] = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, MAX_ROOT_CALLERS];

/**
 * The slots of a merged root operation for `callers` callers (2 … 64): the next of `ROOT_SLOTS`.
 * Every distinct text is a document the department parses, validates and compiles (graphql-jit)
 * the first times it sees it, a stall of several milliseconds on its event loop each. With a slot
 * per caller, an operation had up to 64 texts: on a slow machine the departments were still
 * compiling new ones (for a wave of seventeen, then of twenty-three callers) fifteen seconds into
 * a closed loop, and a few operations' texts would crowd out the rest of mercurius's cache of
 * 1,024 documents, to be compiled again and again. Now an operation has eleven merged texts; a
 * slot past the callers (at most a third of them) is skipped (`@include(if: false)`), which costs
 * the department its variables' checks and a directive's, not a lookup.
 */
export function rootSlots(callers: number): number {
  return ROOT_SLOTS.find((slots) => slots >= callers) ?? MAX_ROOT_CALLERS;
}

const ALIAS = /^_(\d+)_(.*)$/s;

/** Reads a planner operation once: can it be merged, and how. */
function shapeOf(query: string): Shape {
  let document: DocumentNode;
  try {
    document = parse(query, { noLocation: true });
  } catch {
    return { kind: "alone" };
  }
  if (document.definitions.length !== 1) return { kind: "alone" };
  const operation = document.definitions[0];
  if (operation?.kind !== Kind.OPERATION_DEFINITION || operation.operation !== "query") {
    return { kind: "alone" };
  }
  const selections = operation.selectionSet.selections;
  if (
    !selections.every((selection) => selection.kind === Kind.FIELD && !selection.directives?.length)
  ) {
    return { kind: "alone" };
  }
  const fields = selections as readonly FieldNode[];
  const only = fields.length === 1 ? fields[0] : undefined;
  const representations = only?.arguments?.find(
    (argument) => argument.name.value === "representations",
  );
  if (
    only?.name.value === "_entities" &&
    only.arguments?.length === 1 &&
    representations?.value.kind === Kind.VARIABLE &&
    representations.value.name.value === "representations"
  ) {
    return { kind: "entities", responseKey: only.alias?.value ?? only.name.value };
  }
  if (fields.some((field) => field.name.value.startsWith("__"))) return { kind: "alone" };
  return { kind: "root", operation };
}

/** The variable that says whether slot `slot` of a merged root operation holds a caller. */
function slotVariable(slot: number): string {
  return `_${slot}_`;
}

/**
 * The text of `slots` copies of a root operation: slot i's fields aliased `_i_<key>`, its
 * variables renamed `_i_<name>`, and its fields asked only if `$_i_` is true (`rootSlots`).
 */
export function mergedRootQuery(operation: OperationDefinitionNode, slots: number): string {
  const definitions: VariableDefinitionNode[] = [];
  const selections: SelectionNode[] = [];
  const name = (value: string) => ({ kind: Kind.NAME, value }) as const;
  for (let i = 0; i < slots; i++) {
    const renamed = visit(operation, {
      [Kind.VARIABLE]: (node: VariableNode) => ({
        ...node,
        name: { ...node.name, value: `_${i}_${node.name.value}` },
      }),
    }) as OperationDefinitionNode;
    const filled = { kind: Kind.VARIABLE, name: name(slotVariable(i)) } as const;
    definitions.push(...(renamed.variableDefinitions ?? []), {
      kind: Kind.VARIABLE_DEFINITION,
      variable: filled,
      type: { kind: Kind.NON_NULL_TYPE, type: { kind: Kind.NAMED_TYPE, name: name("Boolean") } },
    });
    for (const selection of renamed.selectionSet.selections as readonly FieldNode[]) {
      const key = selection.alias?.value ?? selection.name.value;
      selections.push({
        ...selection,
        alias: name(`_${i}_${key}`),
        directives: [
          {
            kind: Kind.DIRECTIVE,
            name: name("include"),
            arguments: [{ kind: Kind.ARGUMENT, name: name("if"), value: filled }],
          },
        ],
      });
    }
  }
  return print({
    ...operation,
    variableDefinitions: definitions,
    selectionSet: { ...operation.selectionSet, selections },
  });
}

/** The variables of `mergedRootQuery(operation, slots)` for callers' variables, in slot order. */
export function mergedRootVariables(callers: readonly Variables[], slots: number): Variables {
  const variables: Variables = {};
  for (let i = 0; i < slots; i++) {
    // An empty slot still needs its variables, which may be non-null: the last caller's, which
    // the department checks anyway (its fields are skipped, so nothing more).
    const caller = callers[Math.min(i, callers.length - 1)] as Variables;
    for (const [name, value] of Object.entries(caller)) variables[`_${i}_${name}`] = value;
    variables[slotVariable(i)] = i < callers.length;
  }
  return variables;
}

export class DepartmentClient implements GraphQLDataSource<GatewayRequestContext> {
  readonly department: Department;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly breaker: CircuitBreaker<[Outgoing], WireResponse>;
  private readonly coalesce: boolean;
  private readonly maxInFlight: number;
  private readonly maxBatchSize: number;
  private readonly gatherTurns: number;
  private readonly shapes = new Map<string, Shape>();
  private readonly mergedQueries = new Map<string, string>();
  /** Batches being filled, by operation text and other variables. */
  private readonly open = new Map<string, Batch>();
  /** Batches that reached the size limit, waiting for a slot. */
  private readonly ready: Batch[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private sendScheduled = false;

  constructor(private readonly options: DepartmentClientOptions) {
    this.department = options.department;
    this.coalesce = options.coalesce ?? true;
    this.maxInFlight = Math.max(1, options.maxBatchesInFlight ?? 4);
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 1000);
    this.gatherTurns = Math.max(1, options.gatherTurns ?? 3);
    const url = new URL(options.url);
    this.path = url.pathname + url.search;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    this.breaker = new CircuitBreaker((outgoing: Outgoing) => this.attempts(outgoing), {
      // Timeouts are enforced per attempt by the pool; the breaker only counts failures.
      timeout: false,
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      resetTimeout: options.breakerResetMs,
      rollingCountTimeout: 10_000,
    });
  }

  async process(
    options: GraphQLDataSourceProcessOptions<GatewayRequestContext>,
  ): Promise<GatewayGraphQLResponse> {
    const { query, variables, operationName } = options.request;
    const context = options.context as GatewayRequestContext | undefined;
    const requestId = context?.requestId ?? "";
    try {
      const response = await this.fetch(query ?? "", variables ?? {}, operationName, requestId);
      context?.answered.add(this.department);
      return response as GatewayGraphQLResponse;
    } catch (error) {
      context?.unavailable.add(this.department);
      context?.log.warn(
        { department: this.department, reason: (error as Error).message },
        "department unavailable",
      );
      throw departmentUnavailable(
        this.department,
        "pathInIncomingRequest" in options ? options.pathInIncomingRequest : undefined,
      );
    }
  }

  /** One planner fetch, coalesced with others when its shape allows. */
  private fetch(
    query: string,
    variables: Variables,
    operationName: string | undefined,
    requestId: string,
  ): Promise<WireResponse> {
    const shape = this.coalesce ? this.shape(query) : ({ kind: "alone" } as const);
    if (shape.kind === "alone") return this.send(query, variables, operationName, requestId);
    const representations = variables.representations;
    if (shape.kind === "entities" && !Array.isArray(representations)) {
      return this.send(query, variables, operationName, requestId);
    }
    let key = query;
    if (shape.kind === "entities") {
      const { representations: _, ...others } = variables;
      key = `${query}\u0000${JSON.stringify(others)}`;
    }
    const weight =
      shape.kind === "entities" ? (representations as unknown[]).length : listedItems(variables);
    return new Promise((resolve, reject) => {
      let batch = this.open.get(key);
      // An open batch is never full (it is sealed when it fills), but this fetch may not fit.
      if (batch && batch.size + weight > this.maxBatchSize) {
        this.seal(batch);
        batch = undefined;
      }
      if (!batch) {
        batch = { key, query, operationName, shape, callers: [], size: 0 };
        this.open.set(key, batch);
      }
      batch.callers.push({ variables, requestId, resolve, reject });
      batch.size += weight;
      if (
        batch.size >= this.maxBatchSize ||
        (shape.kind === "root" && batch.callers.length >= MAX_ROOT_CALLERS)
      ) {
        this.seal(batch);
      } else this.scheduleFlush();
    });
  }

  /** A batch that takes no more callers: waiting would gather nothing, so it goes next turn. */
  private seal(batch: Batch): void {
    this.open.delete(batch.key);
    this.ready.push(batch);
    this.sendSoon();
  }

  private shape(query: string): Shape {
    let shape = this.shapes.get(query);
    if (!shape) {
      shape = shapeOf(query);
      // Planner operations are few (one per plan fetch); the bound only guards against abuse.
      if (this.shapes.size > 5000) this.shapes.clear();
      this.shapes.set(query, shape);
    }
    return shape;
  }

  /** Sends batches once `gatherTurns` turns of the event loop have added their fetches. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.gather(this.gatherTurns);
  }

  private gather(turns: number): void {
    setImmediate(() => {
      if (turns > 1) {
        this.gather(turns - 1);
        return;
      }
      this.flushScheduled = false;
      this.dispatch(true);
    });
  }

  /**
   * At the next turn: full batches, and open ones unless they are still gathering (those that
   * have gathered and found no slot free).
   */
  private sendSoon(): void {
    if (this.sendScheduled) return;
    this.sendScheduled = true;
    setImmediate(() => {
      this.sendScheduled = false;
      this.dispatch(!this.flushScheduled);
    });
  }

  /**
   * Sends full batches, then (with `open`) the oldest open ones, while fewer than the limit are
   * in flight. A batch that finds no slot stays open and keeps gathering fetches until one frees
   * up.
   */
  private dispatch(open: boolean): void {
    while (this.inFlight < this.maxInFlight) {
      let batch = this.ready.shift();
      if (!batch) {
        const oldest = open ? this.open.values().next() : undefined;
        if (!oldest || oldest.done) return;
        batch = oldest.value;
        this.open.delete(batch.key);
      }
      this.inFlight++;
      this.run(batch).finally(() => {
        this.inFlight--;
        if (this.ready.length > 0 || this.open.size > 0) this.sendSoon();
      });
    }
  }

  private async run(batch: Batch): Promise<void> {
    const { callers } = batch;
    if (callers.length === 1) {
      const [caller] = callers as [Caller];
      await this.send(batch.query, caller.variables, batch.operationName, caller.requestId).then(
        caller.resolve,
        caller.reject,
      );
      return;
    }
    let split: WireResponse[] | null;
    try {
      split =
        batch.shape.kind === "entities"
          ? await this.runEntities(batch, batch.shape.responseKey)
          : await this.runRoot(batch, batch.shape.operation);
    } catch (error) {
      for (const caller of callers) caller.reject(error);
      return;
    }
    if (split) {
      for (const [index, caller] of callers.entries()) caller.resolve(split[index] as WireResponse);
      return;
    }
    // The merged answer lost its data as a whole: ask for each caller on its own.
    await Promise.all(
      callers.map((caller) =>
        this.send(batch.query, caller.variables, batch.operationName, caller.requestId).then(
          caller.resolve,
          caller.reject,
        ),
      ),
    );
  }

  /** One `_entities` call over every caller's representations; each caller gets its slice. */
  private async runEntities(batch: Batch, responseKey: string): Promise<WireResponse[] | null> {
    const { callers } = batch;
    const first = callers[0] as Caller;
    const representations = callers.flatMap(
      (caller) => caller.variables.representations as unknown[],
    );
    const response = await this.send(
      batch.query,
      { ...first.variables, representations },
      batch.operationName,
      requestIds(callers),
      callers.length,
    );
    const entities = response.data?.[responseKey];
    if (!Array.isArray(entities) || entities.length !== representations.length) return null;
    const offsets: number[] = [];
    let offset = 0;
    for (const caller of callers) {
      offsets.push(offset);
      offset += (caller.variables.representations as unknown[]).length;
    }
    const errors = callers.map((): WireError[] => []);
    for (const error of response.errors ?? []) {
      const index = error.path?.[0] === responseKey ? error.path[1] : undefined;
      if (typeof index !== "number") {
        for (const list of errors) list.push(error);
        continue;
      }
      let owner = callers.length - 1;
      while ((offsets[owner] as number) > index) owner--;
      const path = [
        responseKey,
        index - (offsets[owner] as number),
        ...(error.path?.slice(2) ?? []),
      ];
      errors[owner]?.push({ ...error, path });
    }
    return callers.map((caller, i) => {
      const start = offsets[i] as number;
      const length = (caller.variables.representations as unknown[]).length;
      return answer(
        { [responseKey]: entities.slice(start, start + length) },
        errors[i] as WireError[],
        response,
      );
    });
  }

  /** One operation holding every caller's root fields, aliased and with variables renamed. */
  private async runRoot(
    batch: Batch,
    operation: OperationDefinitionNode,
  ): Promise<WireResponse[] | null> {
    const { callers } = batch;
    const slots = rootSlots(callers.length);
    const cacheKey = `${slots}\u0000${batch.query}`;
    let query = this.mergedQueries.get(cacheKey);
    if (!query) {
      query = mergedRootQuery(operation, slots);
      if (this.mergedQueries.size > 5000) this.mergedQueries.clear();
      this.mergedQueries.set(cacheKey, query);
    }
    const response = await this.send(
      query,
      mergedRootVariables(
        callers.map((caller) => caller.variables),
        slots,
      ),
      batch.operationName,
      requestIds(callers),
      callers.length,
    );
    const data = response.data;
    if (!data) return null;
    const parts = callers.map((): Record<string, unknown> => ({}));
    for (const [alias, value] of Object.entries(data)) {
      const match = ALIAS.exec(alias);
      // An empty slot's key (its fields are skipped, so a department sends none) is nobody's.
      const part = match ? parts[Number(match[1])] : undefined;
      const key = match?.[2] as string;
      // A response key named `__proto__` would set the part's prototype instead of a field.
      if (part && key === "__proto__") {
        Object.defineProperty(part, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else if (part) part[key] = value;
    }
    const errors = callers.map((): WireError[] => []);
    for (const error of response.errors ?? []) {
      const head = error.path?.[0];
      const match = typeof head === "string" ? ALIAS.exec(head) : null;
      const slot = match ? Number(match[1]) : -1;
      // About an empty slot: it concerns no caller (a department should send none).
      if (slot >= callers.length) continue;
      const owner = errors[slot];
      if (!owner) {
        for (const list of errors) list.push(error);
        continue;
      }
      owner.push({ ...error, path: [match?.[2] as string, ...(error.path?.slice(1) ?? [])] });
    }
    return parts.map((part, i) => answer(part, errors[i] as WireError[], response));
  }

  /** Sends one operation through the breaker (retries inside), serving `callers` fetches. */
  private send(
    query: string,
    variables: Variables,
    operationName: string | undefined,
    requestIds: string,
    callers = 1,
  ): Promise<WireResponse> {
    const body = departmentRequestBody(query, variables, operationName);
    const { observer } = this.options;
    if (!observer) return this.breaker.fire({ body, requestIds });
    const started = performance.now();
    return this.breaker.fire({ body, requestIds }).then(
      (response) => {
        observer.called((performance.now() - started) / 1000, "ok", callers);
        return response;
      },
      (error: unknown) => {
        const open = (error as { code?: unknown }).code === "EOPENBREAKER";
        observer.called(
          (performance.now() - started) / 1000,
          open ? "circuit_open" : "failed",
          callers,
        );
        throw error;
      },
    );
  }

  private async attempts(outgoing: Outgoing): Promise<WireResponse> {
    let delay = 25;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(outgoing);
      } catch (error) {
        const retryable = !(error instanceof DepartmentFailure) || error.retryable;
        if (!retryable || attempt >= this.options.retries) throw error;
        this.options.observer?.retried();
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay *= 4;
      }
    }
  }

  private async once({ body, requestIds }: Outgoing): Promise<WireResponse> {
    const { statusCode, text } = await exchange(
      this.pool,
      {
        method: "POST",
        path: this.path,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "x-request-id": requestIds,
          [SIGNATURE_HEADER]: signBody(this.options.secret, body),
        },
        body,
      },
      this.options.maxResponseBytes ?? MAX_RESPONSE_BYTES,
      this.options.timeoutMs,
    );
    if (statusCode >= 500) throw new DepartmentFailure(`HTTP ${statusCode}`, true);
    let response: WireResponse;
    try {
      response = JSON.parse(text) as WireResponse;
    } catch {
      throw new DepartmentFailure(`HTTP ${statusCode}, response is not JSON`, false);
    }
    const problem = wireProblem(response);
    if (problem) throw new DepartmentFailure(`HTTP ${statusCode}, ${problem}`, false);
    // A 400 with GraphQL errors is the department's answer (e.g. a malformed argument); anything
    // else that is not 200 (401 from a signature check, 404 from a wrong URL) means no answer.
    if (statusCode === 200 || (statusCode === 400 && Array.isArray(response.errors)))
      return response;
    throw new DepartmentFailure(`HTTP ${statusCode}: ${text.slice(0, 200)}`, false);
  }

  /**
   * The breaker's state: `closed` (no call failed lately), `open` (failing fast) or `half open`
   * (the reset time has passed and the next call is a trial, the department not known to be back).
   */
  get circuit(): "closed" | "open" | "half open" {
    return this.breaker.closed ? "closed" : this.breaker.halfOpen ? "half open" : "open";
  }

  async close(): Promise<void> {
    this.breaker.shutdown();
    await this.pool.close();
  }
}

/** The JSON of representation lists already written, by list. */
const representationsJson = new WeakMap<readonly unknown[], string>();

/**
 * `JSON.stringify({ query, variables, operationName })`, with `variables.representations` written
 * once per list: the plan executor hands the same list of 1,000 persons to every department that
 * adds facts to them (traffic, tax and social in a lottery batch), which would otherwise each
 * write the same 50 KB again.
 */
export function departmentRequestBody(
  query: string,
  variables: Variables,
  operationName: string | undefined,
): string {
  const representations = variables.representations;
  if (!Array.isArray(representations)) return JSON.stringify({ query, variables, operationName });
  let listJson = representationsJson.get(representations);
  if (listJson === undefined) {
    listJson = JSON.stringify(representations);
    representationsJson.set(representations, listJson);
  }
  let variablesJson = "";
  for (const name of Object.keys(variables)) {
    const value = variables[name];
    const json = value === representations ? listJson : JSON.stringify(value);
    // What JSON.stringify leaves out of an object (undefined, functions, symbols).
    if (json === undefined) continue;
    variablesJson += `${variablesJson === "" ? "" : ","}${JSON.stringify(name)}:${json}`;
  }
  const name =
    operationName === undefined ? "" : `,"operationName":${JSON.stringify(operationName)}`;
  return `{"query":${JSON.stringify(query)},"variables":{${variablesJson}}${name}}`;
}

/** A root fetch's weight in a batch: one, plus the items of its list variables (`people(ids:)`). */
function listedItems(variables: Variables): number {
  let items = 1;
  for (const value of Object.values(variables)) if (Array.isArray(value)) items += value.length;
  return items;
}

/** The request ids a batch serves, for the department's logs (bounded). */
function requestIds(callers: readonly Caller[]): string {
  const ids = callers.slice(0, 20).map((caller) => caller.requestId);
  if (callers.length > 20) ids.push(`+${callers.length - 20}`);
  return ids.join(",");
}

function answer(
  data: Record<string, unknown>,
  errors: WireError[],
  response: WireResponse,
): WireResponse {
  const part: WireResponse = { data };
  if (errors.length > 0) part.errors = errors;
  if (response.extensions) part.extensions = response.extensions;
  return part;
}
