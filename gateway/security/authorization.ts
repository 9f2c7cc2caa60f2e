/**
 * Field-level authorization from the schema: the departments' `@requiresScopes`, composed into the
 * supergraph, enforced before any department is called.
 *
 * A field the principal may not see is not sent anywhere: the operation is rewritten with that
 * field replaced by `<its response key>: __typename` (a selection every type has, answered by the
 * planner without any extra fetch), so the rewritten operation stays valid — no selection set
 * becomes empty, no response key moves — and, after execution, the placeholder is overwritten with
 * `null` and a `FORBIDDEN` error carrying the field's path. The rest of the query answers as
 * usual; a forbidden non-null field is `null` without nulling its parent, so a desk keeps every
 * fact it may see. The rewritten document is cached per (operation, scope set), so this costs
 * one lookup per request once a desk's operations are warm.
 *
 * The rewrite also asks every nested `Person`/`Organization` (a spouse, a company's legal
 * representative) for its key under a hidden alias, so that the audit knows whose records were
 * touched; the alias is removed from the response before it is sent.
 */
import { createHash } from "node:crypto";
import {
  type DocumentNode,
  type FieldNode,
  GraphQLError,
  type GraphQLInputType,
  type GraphQLSchema,
  getNamedType,
  isObjectType,
  Kind,
  NoUnusedFragmentsRule,
  NoUnusedVariablesRule,
  type OperationDefinitionNode,
  print,
  specifiedRules,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
} from "graphql";
import { ErrorCode } from "../../common/errors.ts";
import { hasScope, type Principal } from "../principal.ts";
import type { FieldScopes } from "../supergraph.ts";
import { maskFor } from "./masking.ts";
import {
  cachedOperationShape,
  forEachObjectAt,
  type ListArgument,
  reachesNull,
  type ShapeField,
} from "./operation-shape.ts";

/** Types whose objects are data subjects, with their key field. */
export const SUBJECT_KEYS: Readonly<Record<string, string>> = {
  Person: "id",
  Organization: "uscc",
};

/** Root fields that name their subjects in an argument. */
const ROOT_SUBJECT_ARGUMENTS: Readonly<Record<string, string>> = {
  "Query.person": "id",
  "Query.people": "ids",
  "Query.organization": "uscc",
  "Query.organizations": "usccs",
};

/**
 * Fields that name another subject in an argument, and so touch that subject's records: asking
 * whether a child's parent is X reads X's parentage as much as the child's.
 */
const ARGUMENT_SUBJECTS: Readonly<Record<string, { argument: string; type: string }>> = {
  "Person.isChildOf": { argument: "parentId", type: "Person" },
};

/**
 * Facts whose argument is a day the desk chooses, and which, for a person the desk did not name,
 * would give away more than the fact: asked for a few days, `ageOn` finds a spouse's day of birth,
 * and from it and the region the masked number still shows, the number itself in about a hundred
 * guesses. To a purpose without `identity:basic` such a person's fact is answered for today only,
 * that is without the argument; the person the desk named (whose number it sent, birth date
 * included) is not restricted.
 */
const TODAY_ONLY_WHEN_RELATED: Readonly<Record<string, string>> = { "Person.ageOn": "on" };

/** Response keys the gateway keeps for itself (a desk's alias may not start so). */
const RESERVED_PREFIX = "_mianzheng";

/** Response key under which a nested subject's key is fetched for the audit, then removed. */
export const HIDDEN_SUBJECT_KEY = `${RESERVED_PREFIX}Subject`;

export interface RemovedField {
  parentPath: readonly string[];
  responseKey: string;
  coordinate: string;
  requiredScopes: string[][];
  /**
   * Set when the scopes are not the reason: a fact of a person the request did not name, asked
   * for a day of the desk's choosing, which is answered for today only.
   */
  todayOnly?: TodayOnly;
}

/** Why a day-dependent fact was withheld at one position (see `TODAY_ONLY_WHEN_RELATED`). */
export interface TodayOnly {
  /** The day argument the desk gave. */
  argument: string;
  /** Asked of a related person here; otherwise of the named one, through a shared fragment. */
  related: boolean;
}

export interface MaskedField {
  parentPath: readonly string[];
  responseKey: string;
  mask: (value: string) => string;
}

/** Where subjects appear in the response, and which of their facts the operation reads. */
export interface SubjectSite {
  /** Response path of the subject objects (lists stepped through). */
  path: readonly string[];
  type: string;
  /** Root sites take their subjects from the argument (so unknown ids are audited too). */
  rootArgument: { field: FieldNode; name: string; type: GraphQLInputType } | null;
  /**
   * A field naming its subject in an argument below the root (`isChildOf(parentId:)`): `path` is
   * then where the objects holding the field are, and the subject is recorded for each of them
   * that answered the field.
   */
  fieldArgument?: { field: FieldNode; name: string; type: GraphQLInputType; responseKey: string };
  /** Facts disclosed, as `Type.field`, up to the next nested subject. */
  fields: string[];
  /** Facts asked for but withheld. */
  denied: string[];
}

export interface AuthorizedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** Text and sha256 of the document actually planned (the rewritten one when rewritten). */
  query: string;
  hash: string;
  removed: RemovedField[];
  masked: MaskedField[];
  sites: SubjectSite[];
  listArguments: ListArgument[];
  /** Every coordinate withheld, for the audit. */
  denied: string[];
}

const PLANNING_RULES = specifiedRules.filter(
  (rule) => rule !== NoUnusedVariablesRule && rule !== NoUnusedFragmentsRule,
);

function describeScopes(sets: readonly (readonly string[])[]): string {
  return sets.map((set) => set.join(" and ")).join(" or ");
}

export class Authorizer {
  private readonly plans = new WeakMap<
    OperationDefinitionNode,
    Map<ReadonlySet<string>, AuthorizedOperation | readonly GraphQLError[]>
  >();
  private readonly queryType: string;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly scopes: FieldScopes,
  ) {
    this.queryType = schema.getQueryType()?.name ?? "Query";
  }

  /** Whether the principal may read a field. */
  allows(principal: Principal, coordinate: string, atRoot: boolean): boolean {
    if (principal.kind === "open") return true;
    const sets = this.scopes.get(coordinate);
    const citizenField = sets?.some((set) => set.some((scope) => scope.startsWith("citizen:")));
    // A citizen token opens the citizen's own access log, not the registers' root fields.
    if (principal.kind === "citizen" && atRoot && !citizenField) return false;
    if (!sets) return true;
    return sets.some((set) =>
      set.every((scope) =>
        scope.startsWith("citizen:")
          ? principal.kind === "citizen" && principal.scopes.has(scope)
          : hasScope(principal, scope),
      ),
    );
  }

  /**
   * The operation as this principal may run it, or validation errors when the rewrite is not a
   * valid operation (an alias clashing with the hidden subject key).
   */
  authorize(
    document: DocumentNode,
    query: string,
    hash: string,
    operation: OperationDefinitionNode,
    principal: Principal,
  ): AuthorizedOperation | readonly GraphQLError[] {
    let byScopes = this.plans.get(operation);
    if (!byScopes) {
      byScopes = new Map();
      this.plans.set(operation, byScopes);
    }
    let plan = byScopes.get(principal.scopes);
    if (!plan) {
      plan = this.plan(document, query, hash, operation, principal);
      byScopes.set(principal.scopes, plan);
    }
    return plan;
  }

  private plan(
    document: DocumentNode,
    query: string,
    hash: string,
    operation: OperationDefinitionNode,
    principal: Principal,
  ): AuthorizedOperation | readonly GraphQLError[] {
    const shape = cachedOperationShape(this.schema, document, operation);
    const masking = principal.kind !== "open" && !hasScope(principal, "identity:basic");
    // A field node restricted where it reads a related person is replaced wherever it occurs (a
    // fragment may be spread for the named subject too), and with it every node merged with it
    // under one response key (which must stay one field): walked again until nothing is added.
    let walked = this.walk(shape.root, principal, masking, new Set());
    for (let withheld = 0; walked.todayOnly.size > withheld; ) {
      withheld = walked.todayOnly.size;
      walked = this.walk(shape.root, principal, masking, walked.todayOnly);
    }
    const { removed, masked, sites, denied, reserved } = walked;
    // A citizen's log is read on the ledger's writer thread, a page per field: thirty aliases
    // would be thirty reads of it in one request.
    const logReads = [...shape.root.values()].filter(
      (field) => field.coordinate === `${this.queryType}.myAccessLog`,
    );
    if (logReads.length > 1) {
      return [
        new GraphQLError(
          "myAccessLog may be asked once per request (read further pages with its before argument)",
          {
            nodes: logReads.flatMap((field) => field.nodes),
            extensions: { code: ErrorCode.LimitExceeded, limit: "myAccessLog", max: 1 },
          },
        ),
      ];
    }
    if (reserved) {
      // Said plainly rather than as the rewrite's field conflict, which would name the key's use.
      const field = reserved as ShapeField;
      return [
        new GraphQLError(
          `The response key "${field.responseKey}" is reserved by the gateway; choose another alias`,
          { nodes: field.nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } },
        ),
      ];
    }

    const nested = sites.some((site) => site.rootArgument === null && !site.fieldArgument);
    const base = {
      removed,
      masked,
      sites,
      listArguments: shape.listArguments,
      denied: [...denied],
    };
    if (removed.length === 0 && !nested) return { document, operation, query, hash, ...base };

    const rewritten = this.rewrite(document, operation, principal, walked.todayOnly);
    const errors = validate(this.schema, rewritten, PLANNING_RULES);
    if (errors.length > 0) {
      return errors.map(
        (error) =>
          new GraphQLError(error.message, {
            nodes: error.nodes ?? null,
            extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
          }),
      );
    }
    const text = print(rewritten);
    const operationNode = rewritten.definitions.find(
      (definition): definition is OperationDefinitionNode =>
        definition.kind === Kind.OPERATION_DEFINITION,
    ) as OperationDefinitionNode;
    return {
      document: rewritten,
      operation: operationNode,
      query: text,
      hash: createHash("sha256").update(text).digest("hex"),
      ...base,
    };
  }

  /**
   * What the principal may see of an operation's fields, where the subjects are and what is
   * masked. `withheld`: field nodes to withhold wherever they occur; `todayOnly` in the result
   * collects the nodes of day-dependent facts asked of a related person.
   */
  private walk(
    root: Map<string, ShapeField>,
    principal: Principal,
    masking: boolean,
    withheld: ReadonlySet<FieldNode>,
  ) {
    const removed: RemovedField[] = [];
    const masked: MaskedField[] = [];
    const sites: SubjectSite[] = [];
    const denied = new Set<string>();
    const todayOnly = new Set<FieldNode>();
    const queryFields = this.schema.getQueryType()?.getFields() ?? {};
    let reserved: ShapeField | null = null;
    const withhold = (
      field: ShapeField,
      parentPath: readonly string[],
      site: SubjectSite | null,
      todayOnly?: TodayOnly,
    ) => {
      removed.push({
        parentPath,
        responseKey: field.responseKey,
        coordinate: field.coordinate,
        // Today-only: the scope that would lift the restriction, not the field's own.
        requiredScopes: todayOnly
          ? [["identity:basic"]]
          : (this.scopes.get(field.coordinate) ?? []),
        ...(todayOnly ? { todayOnly } : {}),
      });
      denied.add(field.coordinate);
      site?.denied.push(field.coordinate);
    };
    const walk = (
      fields: Map<string, ShapeField>,
      parentPath: readonly string[],
      atRoot: boolean,
      site: SubjectSite | null,
    ): void => {
      for (const field of fields.values()) {
        // The gateway's own keys, and an alias naming another field `__typename` (or any `__`
        // name): the answer would carry a name as its type, and the desk be told a department
        // answered wrongly.
        if (
          field.responseKey.startsWith(RESERVED_PREFIX) ||
          (field.responseKey.startsWith("__") && field.responseKey !== field.fieldName)
        ) {
          reserved ??= field;
        }
        if (!this.allows(principal, field.coordinate, atRoot)) {
          withhold(field, parentPath, site);
          continue;
        }
        // A subject below the root was not named by the desk.
        const related = site !== null && site.rootArgument === null;
        const dayArgument = TODAY_ONLY_WHEN_RELATED[field.coordinate];
        if (
          masking &&
          related &&
          dayArgument &&
          field.nodes.some((node) => node.arguments?.some((arg) => arg.name.value === dayArgument))
        ) {
          for (const node of field.nodes) todayOnly.add(node);
        }
        if (field.nodes.some((node) => withheld.has(node))) {
          for (const node of field.nodes) todayOnly.add(node);
          withhold(field, parentPath, site, { argument: dayArgument ?? "on", related });
          continue;
        }
        site?.fields.push(field.coordinate);
        const named = ARGUMENT_SUBJECTS[field.coordinate];
        if (named) {
          const owner = this.schema.getType(
            field.coordinate.slice(0, field.coordinate.indexOf(".")),
          );
          const type = isObjectType(owner)
            ? owner.getFields()[field.fieldName]?.args.find((arg) => arg.name === named.argument)
                ?.type
            : undefined;
          const node = field.nodes[0];
          if (type && node) {
            sites.push({
              path: parentPath,
              type: named.type,
              rootArgument: null,
              fieldArgument: {
                field: node,
                name: named.argument,
                type,
                responseKey: field.responseKey,
              },
              fields: [field.coordinate],
              denied: [],
            });
          }
        }
        // A related person's number keeps only its region.
        const mask = masking ? maskFor(field.coordinate, related) : null;
        if (mask) masked.push({ parentPath, responseKey: field.responseKey, mask });
        const path = [...parentPath, field.responseKey];
        let childSite = site;
        if (SUBJECT_KEYS[field.outputType]) {
          childSite = { path, type: field.outputType, rootArgument: null, fields: [], denied: [] };
          if (atRoot) {
            const name = ROOT_SUBJECT_ARGUMENTS[field.coordinate];
            const type = queryFields[field.fieldName]?.args.find((arg) => arg.name === name)?.type;
            const node = field.nodes[0];
            // A root field that names no subject in an argument cannot be audited by subject.
            if (!name || !type || !node) childSite = null;
            else childSite.rootArgument = { field: node, name, type };
          }
          if (childSite) sites.push(childSite);
        }
        if (field.children.size > 0) walk(field.children, path, false, childSite);
      }
    };
    walk(root, [], true, null);
    return { removed, masked, sites, denied, todayOnly, reserved: reserved as ShapeField | null };
  }

  /** The operation (and its fragments) with forbidden fields replaced and subject keys added. */
  private rewrite(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    principal: Principal,
    withheld: ReadonlySet<FieldNode>,
  ): DocumentNode {
    const typeInfo = new TypeInfo(this.schema);
    const queryType = this.queryType;
    const allows = (coordinate: string, atRoot: boolean) =>
      this.allows(principal, coordinate, atRoot);
    const definitions = document.definitions.filter(
      (definition) => definition === operation || definition.kind === Kind.FRAGMENT_DEFINITION,
    );
    return visit(
      { ...document, definitions },
      visitWithTypeInfo(typeInfo, {
        Field: {
          enter(node) {
            const parent = typeInfo.getParentType();
            if (!parent || node.name.value.startsWith("__")) return undefined;
            if (
              !withheld.has(node) &&
              allows(`${parent.name}.${node.name.value}`, parent.name === queryType)
            ) {
              return undefined;
            }
            const placeholder: FieldNode = {
              kind: Kind.FIELD,
              alias: { kind: Kind.NAME, value: node.alias?.value ?? node.name.value },
              name: { kind: Kind.NAME, value: "__typename" },
              directives: node.directives ?? [],
            };
            return placeholder;
          },
          leave(node) {
            const parent = typeInfo.getParentType();
            const type = typeInfo.getType();
            if (!node.selectionSet || !parent || !type || parent.name === queryType)
              return undefined;
            const key = SUBJECT_KEYS[getNamedType(type).name];
            if (!key) return undefined;
            const hidden: FieldNode = {
              kind: Kind.FIELD,
              alias: { kind: Kind.NAME, value: HIDDEN_SUBJECT_KEY },
              name: { kind: Kind.NAME, value: key },
            };
            return {
              ...node,
              selectionSet: {
                ...node.selectionSet,
                selections: [...node.selectionSet.selections, hidden],
              },
            };
          },
        },
      }),
    );
  }

  /**
   * Overwrites each removed field's placeholder with `null` and returns one FORBIDDEN error per
   * occurrence, with its path (or, when no parent object exists, one error without a path; none
   * for a field `@skip`ped or not `@include`d).
   */
  withhold(data: unknown, plan: AuthorizedOperation, principal: Principal): GraphQLError[] {
    const errors: GraphQLError[] = [];
    for (const removed of plan.removed) {
      const message = this.forbiddenMessage(removed, principal);
      const extensions = {
        code: ErrorCode.Forbidden,
        field: removed.coordinate,
        requiredScopes: removed.requiredScopes,
      };
      let reached = false;
      forEachObjectAt(data, removed.parentPath, (object, at) => {
        reached = true;
        if (!(removed.responseKey in object)) return; // skipped by @skip/@include
        object[removed.responseKey] = null;
        errors.push(new GraphQLError(message, { path: [...at, removed.responseKey], extensions }));
      });
      // No object to hold the field because its parents are null: the desk still learns it was
      // withheld. None when they are absent: a parent skipped by @skip/@include asked nothing.
      if (!reached && (data === undefined || reachesNull(data, removed.parentPath))) {
        errors.push(new GraphQLError(message, { extensions }));
      }
    }
    return errors;
  }

  private forbiddenMessage(removed: RemovedField, principal: Principal): string {
    if (removed.todayOnly) {
      const { argument, related } = removed.todayOnly;
      const why = `to purpose "${principal.purpose}" of desk ${principal.deskId}, a person the request did not name (a spouse, a representative) has ${removed.coordinate} for today only — for days of the desk's choosing it would give away the day of birth, which only identity:basic discloses`;
      return related
        ? `Not authorized to read ${removed.coordinate}(${argument}:) of this person: ${why}; ask without "${argument}"`
        : `Not authorized to read ${removed.coordinate}(${argument}:) here: the same field is asked, through a fragment or under the same response key, of a person the request did not name, and ${why}`;
    }
    const required = removed.requiredScopes;
    if (principal.kind === "citizen") {
      return `Not authorized to read ${removed.coordinate}: a citizen token opens only myAccessLog`;
    }
    if (required.every((set) => set.some((scope) => scope.startsWith("citizen:")))) {
      return `Not authorized to read ${removed.coordinate}: it answers citizen-authenticated requests only`;
    }
    return `Not authorized to read ${removed.coordinate}: it requires ${describeScopes(required)}, which purpose "${principal.purpose}" of desk ${principal.deskId} does not grant`;
  }
}
