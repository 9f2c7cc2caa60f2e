/**
 * Demand control: what an operation will cost, estimated before any department is called, and
 * refused over a budget. Depth, aliases and list arguments each bound one dimension of a request;
 * their product did not: `people(ids:)` of 1,000 persons with 29 aliases of their contribution
 * histories stayed within every limit and asked for a 42 MB answer.
 *
 * The estimate is the IBM GraphQL Cost Directive specification's, as Apollo Router and Hive Router
 * apply it, read from the departments' `@cost` and `@listSize` (composed into the supergraph):
 *
 * - a field costs its weight plus what its selections cost, times the size of the list it returns;
 * - a weight is the field's `@cost(weight:)`, else its type's, else 1 for an object and 0 for a
 *   scalar or an enum (a fact is part of its object's row; an object is a row or a call);
 * - a list's size is, in order: the length of the list argument it is looked up by (a lookup
 *   answers one element per key, as the root lookups `people(ids:)` and `verify(subjects:)` do; the specification's slicing arguments
 *   must be integers, so this is the gateway's own rule), the largest `@listSize` slicing argument
 *   given (or its default), the field's `@listSize(assumedSize:)`, else the default list size.
 *
 * What does not depend on the variables (everything but list lengths and slicing arguments) is
 * folded into numbers once per planned operation.
 */
import {
  type DirectiveNode,
  type DocumentNode,
  GraphQLError,
  type GraphQLField,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isCompositeType,
  isListType,
  Kind,
  type OperationDefinitionNode,
  type ValueNode,
} from "graphql";
import { ErrorCode } from "../../common/errors.ts";
import { cachedOperationShape, type ShapeField } from "./operation-shape.ts";

/** The cost directives of the supergraph. */
export interface CostDirectives {
  /** `@cost(weight:)` by field coordinate (`Person.contributions`) or type name (`Person`). */
  weights: Map<string, number>;
  /** `@listSize` by field coordinate. */
  listSizes: Map<string, ListSize>;
}

export interface ListSize {
  assumedSize: number | null;
  slicingArguments: string[];
}

function intArgument(directive: DirectiveNode, name: string): number | null {
  const value = directive.arguments?.find((argument) => argument.name.value === name)?.value;
  return value?.kind === Kind.INT ? Number(value.value) : null;
}

function stringsArgument(directive: DirectiveNode, name: string): string[] {
  const value = directive.arguments?.find((argument) => argument.name.value === name)?.value;
  if (value?.kind === Kind.STRING) return [value.value];
  if (value?.kind !== Kind.LIST) return [];
  return value.values.flatMap((item) => (item.kind === Kind.STRING ? [item.value] : []));
}

/**
 * Reads `@cost` and `@listSize` from the supergraph, under the names its
 * `@link(url: "https://specs.apollo.dev/cost/v0.1")` gives them (imported, or `cost__cost`).
 */
export function readCostDirectives(document: DocumentNode): CostDirectives {
  const names = { cost: "cost__cost", listSize: "cost__listSize" };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) {
      continue;
    }
    for (const link of definition.directives ?? []) {
      if (link.name.value !== "link") continue;
      const url = stringsArgument(link, "url")[0];
      if (!url?.startsWith("https://specs.apollo.dev/cost/")) continue;
      const as = stringsArgument(link, "as")[0] ?? "cost";
      names.cost = `${as}__cost`;
      names.listSize = `${as}__listSize`;
      for (const imported of stringsArgument(link, "import")) {
        if (imported === "@cost") names.cost = "cost";
        if (imported === "@listSize") names.listSize = "listSize";
      }
    }
  }
  const weights = new Map<string, number>();
  const listSizes = new Map<string, ListSize>();
  const readWeight = (key: string, directives: readonly DirectiveNode[] | undefined) => {
    for (const directive of directives ?? []) {
      if (directive.name.value !== names.cost) continue;
      const weight = intArgument(directive, "weight");
      if (weight !== null) weights.set(key, Math.max(weights.get(key) ?? 0, weight));
    }
  };
  for (const definition of document.definitions) {
    if (!("name" in definition) || !definition.name || !("directives" in definition)) continue;
    const typeName = definition.name.value;
    readWeight(typeName, definition.directives);
    if (!("fields" in definition)) continue;
    for (const field of definition.fields ?? []) {
      const coordinate = `${typeName}.${field.name.value}`;
      readWeight(coordinate, field.directives);
      for (const directive of field.directives ?? []) {
        if (directive.name.value !== names.listSize) continue;
        listSizes.set(coordinate, {
          assumedSize: intArgument(directive, "assumedSize"),
          slicingArguments: stringsArgument(directive, "slicingArguments"),
        });
      }
    }
  }
  return { weights, listSizes };
}

type Variables = Record<string, unknown>;
/** A cost, folded to a number where it does not depend on the variables. */
type Cost = number | ((variables: Variables) => number);

const evaluate = (cost: Cost, variables: Variables): number =>
  typeof cost === "number" ? cost : cost(variables);

function sum(costs: readonly Cost[]): Cost {
  let fixed = 0;
  const variable: Array<(variables: Variables) => number> = [];
  for (const cost of costs) {
    if (typeof cost === "number") fixed += cost;
    else variable.push(cost);
  }
  if (variable.length === 0) return fixed;
  return (variables) => {
    let total = fixed;
    for (const cost of variable) total += cost(variables);
    return total;
  };
}

function times(size: Cost, cost: Cost): Cost {
  if (typeof size === "number" && typeof cost === "number") return size * cost;
  return (variables) => evaluate(size, variables) * evaluate(cost, variables);
}

/**
 * A list argument's length, or a slicing argument's value; `otherwise` when the request gives
 * neither it nor a default.
 */
function argumentSize(
  value: ValueNode | undefined,
  defaultValue: unknown,
  list: boolean,
  otherwise: number,
): Cost {
  const measure = (given: unknown): number => {
    if (given === null || given === undefined) return otherwise;
    if (list) return Array.isArray(given) ? given.length : 1; // a single value is a list of one
    return typeof given === "number" && Number.isFinite(given) ? Math.max(0, given) : otherwise;
  };
  if (value === undefined) return measure(defaultValue);
  if (value.kind === Kind.VARIABLE) {
    const name = value.name.value;
    return (variables) => measure(variables[name] ?? defaultValue);
  }
  if (value.kind === Kind.NULL) return otherwise;
  if (list) return value.kind === Kind.LIST ? value.values.length : 1;
  return value.kind === Kind.INT ? Math.max(0, Number(value.value)) : otherwise;
}

/**
 * Estimates operations' costs against the supergraph's directives. An operation's formula is
 * made once (operations are cached) and evaluated with each request's coerced variables.
 */
export class CostEstimator {
  private readonly formulas = new WeakMap<OperationDefinitionNode, Cost>();
  private readonly rootType: string;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly directives: CostDirectives,
    /** A list's size when nothing else says (`COST_LIST_SIZE`). */
    private readonly defaultListSize: number,
  ) {
    this.rootType = schema.getQueryType()?.name ?? "Query";
  }

  /** The operation's estimated cost with these (coerced) variables. */
  estimate(document: DocumentNode, operation: OperationDefinitionNode, variables: Variables) {
    let formula = this.formulas.get(operation);
    if (formula === undefined) {
      const shape = cachedOperationShape(this.schema, document, operation);
      formula = sum([...shape.root.values()].map((field) => this.fieldCost(field)));
      this.formulas.set(operation, formula);
    }
    return evaluate(formula, variables);
  }

  /** `LIMIT_EXCEEDED` when an estimate is over the budget (empty otherwise). */
  errors(cost: number, max: number): GraphQLError[] {
    if (cost <= max) return [];
    const shown = Number.isSafeInteger(cost) ? cost.toLocaleString("en") : "beyond counting";
    return [
      new GraphQLError(
        `the estimated cost of this operation is ${shown}; at most ${max.toLocaleString("en")} per request (ask for fewer subjects, fewer list fields, or narrower lists)`,
        {
          extensions: {
            code: ErrorCode.LimitExceeded,
            limit: "cost",
            max,
            cost: Number.isSafeInteger(cost) ? cost : null,
          },
        },
      ),
    ];
  }

  private fieldCost(field: ShapeField): Cost {
    // The type the field was selected on (a fragment's type condition included), as its
    // coordinate names it: under an interface, `... on Concrete { f }` is Concrete's f.
    const parentType = field.coordinate.slice(0, field.coordinate.indexOf("."));
    const parent = this.schema.getType(parentType);
    const definition =
      parent && "getFields" in parent
        ? (parent.getFields()[field.fieldName] as GraphQLField<unknown, unknown> | undefined)
        : undefined;
    if (!definition) return 0;
    const type = getNamedType(definition.type);
    const weight =
      this.directives.weights.get(field.coordinate) ??
      this.directives.weights.get(type.name) ??
      (isCompositeType(type) ? 1 : 0);
    const selections = sum([...field.children.values()].map((child) => this.fieldCost(child)));
    const own = sum([weight, selections]);
    if (!isListType(getNullableType(definition.type))) return own;
    return times(this.listSize(field, definition, parentType === this.rootType), own);
  }

  private listSize(
    field: ShapeField,
    definition: GraphQLField<unknown, unknown>,
    atRoot: boolean,
  ): Cost {
    const node = field.nodes[0];
    const given = (name: string) =>
      node?.arguments?.find((argument) => argument.name.value === name)?.value;
    // A root lookup by a list of keys answers one element per key.
    const lookups = (atRoot ? definition.args : [])
      .filter((argument) => isListType(getNullableType(argument.type)))
      .map((argument) => argumentSize(given(argument.name), argument.defaultValue, true, 0));
    if (lookups.length > 0) return largest(lookups);
    const directive = this.directives.listSizes.get(field.coordinate);
    const assumed = directive?.assumedSize ?? this.defaultListSize;
    const slices = (directive?.slicingArguments ?? []).map((name) => {
      const argument = definition.args.find((candidate) => candidate.name === name);
      return argumentSize(given(name), argument?.defaultValue, false, assumed);
    });
    return slices.length > 0 ? largest(slices) : assumed;
  }
}

function largest(sizes: readonly Cost[]): Cost {
  if (sizes.every((size) => typeof size === "number")) return Math.max(...(sizes as number[]));
  return (variables) => Math.max(...sizes.map((size) => evaluate(size, variables)));
}
