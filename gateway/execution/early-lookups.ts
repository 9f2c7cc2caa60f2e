/**
 * Which entity fetches of a plan can start together with the root fetch they follow.
 *
 * The planner sequences `person(id: $id)` at the household register before the five departments
 * that add facts to that person, because their `_entities` call needs the person's key, which is
 * in the register's answer. But for a lookup by key, the key is already in the request: the
 * representation `{ __typename: "Person", id }` the departments will be sent is known before the
 * register answers. So those fetches start at once, beside the root fetch, and their answers are
 * used only if the register's answer confirms the guess — the entity (or, for a list, every
 * non-null element) is of that type with exactly that key, so the planner's own step would have
 * sent the same representations. Otherwise (an unknown person, an id the register normalised,
 * a department that failed) the early answers are dropped and the plan runs as planned. One
 * round of department calls instead of two for the most common request.
 *
 * A root field is a lookup when it takes one argument named after the entity's key field — `id`
 * for `person`, `ids` (the plural) for `people`, which returns a list — and the fetch after it
 * requires only `__typename` and that key. Anything else is left as planned.
 */
import type {
  FetchNode,
  PlanNode,
  QueryPlanSelectionNode,
  SequenceNode,
} from "@apollo/query-planner";
import {
  type FieldNode,
  type GraphQLArgument,
  type GraphQLSchema,
  getNamedType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
  valueFromAST,
} from "graphql";

/** A root field that looks an entity up by its key, as one early fetch needs it. */
export interface Lookup {
  /** Where the root fetch puts the answer (the field's alias or name). */
  responseKey: string;
  /** The entity type the field returns. */
  typename: string;
  keyField: string;
  /** `people(ids:)`: a list of keys in, a list of entities (or nulls) out, in the same order. */
  list: boolean;
  /** The variable the argument reads, or null when the operation wrote it literally. */
  variable: string | null;
  literal: unknown;
  /** The representation's fields in the order the plan's `requires` lists them. */
  typenameFirst: boolean;
}

/** The entity fetches of a sequence's second step that may start with its first, root, fetch. */
export type EarlyFetches = Map<FetchNode, Lookup>;

/** Candidate lookups of a root fetch, by response key. */
interface RootField {
  typename: string;
  list: boolean;
  argument: string;
  variable: string | null;
  literal: unknown;
}

/**
 * The early fetches of `sequence`, or null when it has none. Plans are cached, so this runs
 * once per plan (`PlanExecutor` keeps the answer by node).
 */
export function earlyFetchesOf(sequence: SequenceNode, schema: GraphQLSchema): EarlyFetches | null {
  const [first, second] = sequence.nodes;
  if (first?.kind !== "Fetch" || first.requires || !second) return null;
  const roots = rootLookups(first, schema);
  if (roots.size === 0) return null;
  const steps: PlanNode[] = second.kind === "Parallel" ? second.nodes : [second];
  const early: EarlyFetches = new Map();
  const lookups = new Map<string, Lookup>();
  for (const step of steps) {
    if (step.kind !== "Flatten" || step.node.kind !== "Fetch") continue;
    const fetch = step.node;
    const [responseKey, marker, ...rest] = step.path;
    if (typeof responseKey !== "string" || rest.length > 0) continue;
    const root = roots.get(responseKey);
    if (!root || marker !== (root.list ? "@" : undefined)) continue;
    const key = keyRequirement(fetch.requires, root.typename);
    if (!key || root.argument !== (root.list ? `${key.field}s` : key.field)) continue;
    // One object per shape, so fetches over the same persons share one list of representations.
    const shape = `${responseKey}\u0000${key.field}\u0000${key.typenameFirst}`;
    let lookup = lookups.get(shape);
    if (!lookup) {
      lookup = {
        responseKey,
        typename: root.typename,
        keyField: key.field,
        list: root.list,
        variable: root.variable,
        literal: root.literal,
        typenameFirst: key.typenameFirst,
      };
      lookups.set(shape, lookup);
    }
    early.set(fetch, lookup);
  }
  return early.size > 0 ? early : null;
}

/** The root fetch's fields that take one argument and return an object type or a list of it. */
function rootLookups(fetch: FetchNode, schema: GraphQLSchema): Map<string, RootField> {
  const found = new Map<string, RootField>();
  const queryType = schema.getQueryType();
  if (!queryType) return found;
  let operation: ReturnType<typeof parse>["definitions"][number] | undefined;
  try {
    const document = parse(fetch.operation, { noLocation: true });
    operation = document.definitions.length === 1 ? document.definitions[0] : undefined;
  } catch {
    return found;
  }
  if (operation?.kind !== Kind.OPERATION_DEFINITION || operation.operation !== "query") {
    return found;
  }
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || selection.directives?.length) continue;
    const field = selection as FieldNode;
    const definition = queryType.getFields()[field.name.value];
    const argument = field.arguments?.length === 1 ? field.arguments[0] : undefined;
    if (definition?.args.length !== 1 || !argument) continue;
    const parameter = definition.args[0] as GraphQLArgument;
    const type = isNonNullType(definition.type) ? definition.type.ofType : definition.type;
    const list = isListType(type);
    const element = list ? type.ofType : type;
    if (!isObjectType(isNonNullType(element) ? element.ofType : element)) continue;
    const value = argument.value;
    found.set(field.alias?.value ?? field.name.value, {
      typename: getNamedType(type).name,
      list,
      argument: argument.name.value,
      variable: value.kind === Kind.VARIABLE ? value.name.value : null,
      // Coerced as the department will coerce it: the planner prints an ID of digits as an Int
      // (`person(id:110108198707081026)`), which read untyped is a double that has lost its
      // last digits, a different person's number.
      literal: value.kind === Kind.VARIABLE ? undefined : valueFromAST(value, parameter.type),
    });
  }
  return found;
}

/** `... on T { __typename key }` (either order) → the key field; null for any other shape. */
function keyRequirement(
  requires: readonly QueryPlanSelectionNode[] | undefined,
  typename: string,
): { field: string; typenameFirst: boolean } | null {
  const fragment = requires?.length === 1 ? requires[0] : undefined;
  if (fragment?.kind !== "InlineFragment" || fragment.typeCondition !== typename) return null;
  const fields = fragment.selections;
  if (fields.length !== 2) return null;
  const names: string[] = [];
  for (const field of fields) {
    if (field.kind !== "Field" || field.alias || field.selections) return null;
    names.push(field.name);
  }
  const [a, b] = names as [string, string];
  if (a === "__typename" && b !== "__typename") return { field: b, typenameFirst: true };
  if (b === "__typename" && a !== "__typename") return { field: a, typenameFirst: false };
  return null;
}

type Data = Record<string, unknown>;

function isKey(value: unknown): value is string | number {
  return typeof value === "string" || typeof value === "number";
}

/** The key value(s) the request gives the lookup, or null when they are not plain keys. */
export function lookupKeys(
  lookup: Lookup,
  variables: Record<string, unknown>,
): Array<string | number> | null {
  const value =
    lookup.variable === null
      ? lookup.literal
      : Object.hasOwn(variables, lookup.variable)
        ? variables[lookup.variable]
        : undefined;
  if (!lookup.list) return isKey(value) ? [value] : null;
  if (!Array.isArray(value) || !value.every(isKey)) return null;
  return value;
}

/** The representations the early fetches send: what the planner's step would build. */
export function lookupRepresentations(
  lookup: Lookup,
  keys: ReadonlyArray<string | number>,
): Data[] {
  const { typename, keyField } = lookup;
  return keys.map((key) =>
    lookup.typenameFirst
      ? { __typename: typename, [keyField]: key }
      : { [keyField]: key, __typename: typename },
  );
}

/**
 * Whether the root fetch's answer confirms the guess: the entity has the lookup's type and key
 * (for a list, the list has one element per key, each null or the entity with that key). Only
 * then are the representations the planner's step would send exactly the early ones, minus those
 * of null elements.
 */
export function confirms(
  lookup: Lookup,
  keys: ReadonlyArray<string | number>,
  root: Data,
): boolean {
  const answer = Object.hasOwn(root, lookup.responseKey) ? root[lookup.responseKey] : undefined;
  const matches = (entity: unknown, key: string | number): boolean =>
    entity !== null &&
    typeof entity === "object" &&
    !Array.isArray(entity) &&
    (entity as Data).__typename === lookup.typename &&
    Object.hasOwn(entity as Data, lookup.keyField) &&
    (entity as Data)[lookup.keyField] === key;
  if (!lookup.list) return matches(answer, keys[0] as string | number);
  if (!Array.isArray(answer) || answer.length !== keys.length) return false;
  for (let index = 0; index < keys.length; index++) {
    const entity = answer[index];
    if (entity !== null && !matches(entity, keys[index] as string | number)) return false;
  }
  return true;
}
