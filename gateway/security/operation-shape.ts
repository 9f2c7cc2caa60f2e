/**
 * The shape of an operation's response, known before anything runs: every field by its response
 * path, with its schema coordinate (`Person.name`), fragments expanded and fields of the same
 * response key merged, as GraphQL execution will merge them. Authorization, masking and the
 * audit all work on this shape; it depends only on the document, so it is computed once per
 * operation and cached.
 */
import {
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";

export interface ShapeField {
  responseKey: string;
  fieldName: string;
  /** `Type.field`, as `@requiresScopes` is keyed. */
  coordinate: string;
  /** Named output type, e.g. `Person`, `Region`, `Boolean`. */
  outputType: string;
  /** Field nodes merged under this response key (all carry the same arguments). */
  nodes: FieldNode[];
  children: Map<string, ShapeField>;
}

/** A list-valued argument somewhere in the operation, for the list-size limit. */
export interface ListArgument {
  coordinate: string;
  argument: ArgumentNode;
}

export interface OperationShape {
  root: Map<string, ShapeField>;
  rootType: string;
  listArguments: ListArgument[];
}

function fieldsOf(type: GraphQLNamedType | null | undefined) {
  return type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields() : null;
}

export function operationShape(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): OperationShape {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition);
  }
  const listArguments: ListArgument[] = [];
  const seenArgumentNodes = new Set<FieldNode>();

  function collect(
    selectionSet: SelectionSetNode,
    parentType: string,
    into: Map<string, ShapeField>,
    spread: Set<string>,
  ): void {
    const fields = fieldsOf(schema.getType(parentType));
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        collect(
          selection.selectionSet,
          selection.typeCondition?.name.value ?? parentType,
          into,
          spread,
        );
      } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        // A fragment spread twice into the same selection adds nothing the first did not.
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || spread.has(name)) continue;
        spread.add(name);
        collect(fragment.selectionSet, fragment.typeCondition.name.value, into, spread);
      } else {
        const fieldName = selection.name.value;
        if (fieldName.startsWith("__")) continue;
        const definition = fields?.[fieldName];
        if (!definition) continue;
        const coordinate = `${parentType}.${fieldName}`;
        if (!seenArgumentNodes.has(selection)) {
          seenArgumentNodes.add(selection);
          for (const argument of selection.arguments ?? []) {
            const type = definition.args.find((arg) => arg.name === argument.name.value)?.type;
            if (type && isListType(getNullableType(type as GraphQLInputType))) {
              listArguments.push({ coordinate, argument });
            }
          }
        }
        const responseKey = selection.alias?.value ?? fieldName;
        let field = into.get(responseKey);
        if (!field) {
          field = {
            responseKey,
            fieldName,
            coordinate,
            outputType: getNamedType(definition.type).name,
            nodes: [],
            children: new Map(),
          };
          into.set(responseKey, field);
        }
        field.nodes.push(selection);
        if (selection.selectionSet) {
          collect(selection.selectionSet, field.outputType, field.children, new Set());
        }
      }
    }
  }

  const rootType = schema.getRootType(operation.operation)?.name ?? "Query";
  const root = new Map<string, ShapeField>();
  collect(operation.selectionSet, rootType, root, new Set());
  return { root, rootType, listArguments };
}

const shapes = new WeakMap<OperationDefinitionNode, OperationShape>();

/** The operation's shape, computed once per (cached) operation node. */
export function cachedOperationShape(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): OperationShape {
  let shape = shapes.get(operation);
  if (!shape) {
    shape = operationShape(schema, document, operation);
    shapes.set(operation, shape);
  }
  return shape;
}

/**
 * Calls `visit` for every object found at `path` (response keys) below `data`, stepping through
 * lists, with the concrete response path (keys and list indexes) of that object.
 */
export function forEachObjectAt(
  data: unknown,
  path: readonly string[],
  visit: (object: Record<string, unknown>, at: readonly (string | number)[]) => void,
): void {
  const at: (string | number)[] = [];
  const step = (value: unknown, depth: number): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      for (let index = 0; index < value.length; index++) {
        at.push(index);
        step(value[index], depth);
        at.pop();
      }
      return;
    }
    if (typeof value !== "object") return;
    const object = value as Record<string, unknown>;
    if (depth === path.length) {
      visit(object, at);
      return;
    }
    const key = path[depth] as string;
    at.push(key);
    step(object[key], depth + 1);
    at.pop();
  };
  step(data, 0);
}

/**
 * Whether the walk `forEachObjectAt` makes along `path` meets a `null` on the way (a parent the
 * answer nulled), as opposed to reaching objects or finding the path's keys absent (a field
 * `@skip`ped or not `@include`d is not in the answer at all).
 */
export function reachesNull(data: unknown, path: readonly string[]): boolean {
  const step = (value: unknown, depth: number): boolean => {
    if (value === null) return true;
    if (value === undefined || typeof value !== "object") return false;
    if (Array.isArray(value)) return value.some((item) => step(item, depth));
    if (depth === path.length) return false;
    return step((value as Record<string, unknown>)[path[depth] as string], depth + 1);
  };
  return step(data, 0);
}
