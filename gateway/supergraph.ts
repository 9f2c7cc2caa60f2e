/**
 * Reading the composed supergraph: which scopes each field requires (Federation's
 * `@requiresScopes` / `@authenticated`, composed from the departments' SDLs), what fields cost
 * (`@cost`, `@listSize`) and the SDL handed to Apollo's query planner.
 *
 * Apollo Gateway refuses a supergraph that links a `for: SECURITY` feature, because it does not
 * enforce one. Mianzheng enforces these directives itself (gateway/security), before any
 * department is called, so the planner receives the same supergraph with the purpose dropped.
 */
import { fileURLToPath } from "node:url";
import {
  type ConstDirectiveNode,
  type DocumentNode,
  Kind,
  parse,
  print,
  type StringValueNode,
  visit,
} from "graphql";
import { type CostDirectives, readCostDirectives } from "./security/cost.ts";

/** The composed supergraph, checked in (`npm run compose` writes it). */
export const SUPERGRAPH_PATH = fileURLToPath(
  new URL("../schema/supergraph.graphql", import.meta.url),
);

const SECURITY_SPECS = [
  "https://specs.apollo.dev/requiresScopes/",
  "https://specs.apollo.dev/authenticated/",
  "https://specs.apollo.dev/policy/",
];

/** Per `Type.field`: the scope sets of which one must be held in full (OR of ANDs). */
export type FieldScopes = Map<string, string[][]>;

export interface Supergraph {
  /** The supergraph as Apollo's planner accepts it. */
  plannerSdl: string;
  scopes: FieldScopes;
  /** Fields marked `@authenticated`. */
  authenticated: Set<string>;
  /** `@cost` and `@listSize`, for the cost limit. */
  cost: CostDirectives;
}

function linkUrl(directive: ConstDirectiveNode): string | null {
  const url = directive.arguments?.find((argument) => argument.name.value === "url")?.value;
  return url?.kind === Kind.STRING ? (url as StringValueNode).value : null;
}

function scopeSets(directive: ConstDirectiveNode): string[][] {
  const value = directive.arguments?.find((argument) => argument.name.value === "scopes")?.value;
  if (value?.kind !== Kind.LIST) return [];
  return value.values.map((set) =>
    set.kind === Kind.LIST
      ? set.values.flatMap((scope) => (scope.kind === Kind.STRING ? [scope.value] : []))
      : [],
  );
}

export function readSupergraph(sdl: string): Supergraph {
  const document = parse(sdl);
  const scopes: FieldScopes = new Map();
  const authenticated = new Set<string>();
  for (const definition of document.definitions) {
    if (
      definition.kind !== Kind.OBJECT_TYPE_DEFINITION &&
      definition.kind !== Kind.OBJECT_TYPE_EXTENSION &&
      definition.kind !== Kind.INTERFACE_TYPE_DEFINITION
    ) {
      continue;
    }
    for (const field of definition.fields ?? []) {
      const coordinate = `${definition.name.value}.${field.name.value}`;
      for (const directive of field.directives ?? []) {
        if (directive.name.value === "requiresScopes") {
          scopes.set(coordinate, [...(scopes.get(coordinate) ?? []), ...scopeSets(directive)]);
        } else if (directive.name.value === "authenticated") {
          authenticated.add(coordinate);
        }
      }
    }
  }
  const planner = visit(document, {
    Directive(node) {
      if (node.name.value !== "link") return undefined;
      const url = linkUrl(node as ConstDirectiveNode);
      if (!url || !SECURITY_SPECS.some((spec) => url.startsWith(spec))) return undefined;
      return {
        ...node,
        arguments: node.arguments?.filter((argument) => argument.name.value !== "for"),
      };
    },
  }) as DocumentNode;
  return { plannerSdl: print(planner), scopes, authenticated, cost: readCostDirectives(document) };
}
