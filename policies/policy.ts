/**
 * What a verification policy is: a named, versioned definition of the facts it needs (federated
 * GraphQL operations over `Person` or `Organization`) and the requirements over them. A policy
 * file holds data and pure functions only; the gateway runs the operations, evaluates the
 * requirements and signs the verdicts (`gateway/verification/`).
 *
 * Facts are three-valued: a requirement is met (`true`), failed (`false`) or could not be
 * evaluated (`undefined`) because a department whose facts it needs did not answer. A missing
 * fact never counts as "no" (policies.md: never guess).
 */
import { Kind, type OperationDefinitionNode, parse } from "graphql";
import { DEPARTMENTS, type Department, isDepartment } from "../common/departments.ts";

/** What a policy decides about. */
export type SubjectKind = "PERSON" | "ORGANIZATION";

/** The department owning the register of each subject kind: no record there means no subject. */
export const OWNING_DEPARTMENT: Record<SubjectKind, Department> = {
  PERSON: "hukou",
  ORGANIZATION: "market",
};

/** Met, failed, or unknown (a fact it needs was not obtained). */
export type Truth = boolean | undefined;

/**
 * The facts about one subject, by department (each department's alias in the operations). A
 * department is absent when its answer was not obtained for this subject, or not asked for.
 */
export type FactsByDepartment = Partial<Record<Department, Record<string, unknown>>>;

/** Values every operation of a policy may use, derived from the application date `on`. */
export type PolicyVariables = Record<string, string | number | boolean>;

export interface FactStage<F extends FactsByDepartment, V extends PolicyVariables> {
  /**
   * One federated GraphQL query. Each root field is aliased by the name of the department whose
   * facts it selects (`hukou: people(ids: $ids) { alive }`), so that a department that does not
   * answer nulls only its own alias. `$ids` receives the subjects; the other variables come from
   * the policy's `variables`.
   */
  operation: string;
  /**
   * For a later stage: whether a subject needs this stage's facts, given the facts obtained so far.
   * Subjects that need nothing more are not asked about (the departments of a later stage are
   * then not consulted for them). Default: every subject the owning register holds.
   */
  neededFor?(facts: Partial<F>, variables: V): boolean;
}

export interface Requirement<F extends FactsByDepartment, V extends PolicyVariables> {
  /** Reason code reported when the requirement fails. */
  reason: string;
  /** What it requires, for desks (listed by `Query.policies`). */
  description: string;
  /** Departments whose facts it may need; reported in `unavailable` when it cannot be evaluated. */
  departments: readonly Department[];
  met(facts: Partial<F>, variables: V): Truth;
}

export interface PolicyDefinition<F extends FactsByDepartment, V extends PolicyVariables> {
  /** `<area>/<name>`, e.g. `beijing-car-lottery/individual`; the scope `verify:<name>` grants it. */
  name: string;
  /** Changes whenever a rule or an operation changes; signed into every proof. */
  version: string;
  description: string;
  subjectKind: SubjectKind;
  /** Operation variables for application date `on` (`YYYY-MM-DD`). */
  variables(on: string): V;
  stages: readonly FactStage<F, V>[];
  /** In the order their reason codes are reported. */
  requirements: readonly Requirement<F, V>[];
  /** For policies that grant a quantity (e.g. number of car quotas) when every requirement is met. */
  quota?(facts: F, variables: V): number;
}

/** A checked policy, with what the gateway derives from its definition. */
export interface Policy<
  F extends FactsByDepartment = FactsByDepartment,
  V extends PolicyVariables = PolicyVariables,
> extends PolicyDefinition<F, V> {
  /** The scope a desk's purpose must grant to run the policy. */
  scope: string;
  /** Every department the operations consult, in the platform's department order. */
  departments: readonly Department[];
  /** Departments whose alias each stage carries, and the variables each stage declares. */
  stagePlans: readonly StagePlan[];
}

export interface StagePlan {
  aliases: readonly Department[];
  variableNames: readonly string[];
  /** Facts each department's alias asks for, as `Type.field` (for the access ledger). */
  fieldsByAlias: Partial<Record<Department, readonly string[]>>;
}

/** Reason codes every policy can give besides its own. */
export const COMMON_REASONS = {
  INVALID_ID:
    "The subject is not a well-formed identifier of the policy's kind (check character included).",
  SUBJECT_NOT_FOUND:
    "The owning register (household registration for persons, market register for organisations) has no such subject.",
} as const;

function planStage(policyName: string, subjectKind: SubjectKind, operation: string): StagePlan {
  const document = parse(operation);
  const definitions = document.definitions.filter(
    (definition): definition is OperationDefinitionNode =>
      definition.kind === Kind.OPERATION_DEFINITION,
  );
  const definition = definitions[0];
  if (definitions.length !== 1 || !definition || definition.operation !== "query") {
    throw new Error(`policy ${policyName}: each stage must be exactly one query operation`);
  }
  const variableNames = (definition.variableDefinitions ?? []).map((v) => v.variable.name.value);
  if (!variableNames.includes("ids")) {
    throw new Error(`policy ${policyName}: each stage must declare $ids (the subjects)`);
  }
  const rootField = subjectKind === "PERSON" ? "people" : "organizations";
  const typeName = subjectKind === "PERSON" ? "Person" : "Organization";
  const aliases: Department[] = [];
  const fieldsByAlias: Partial<Record<Department, string[]>> = {};
  for (const selection of definition.selectionSet.selections) {
    const alias = selection.kind === Kind.FIELD ? selection.alias?.value : undefined;
    if (selection.kind !== Kind.FIELD || !alias || !isDepartment(alias)) {
      throw new Error(
        `policy ${policyName}: every root field must be aliased by a department (${DEPARTMENTS.join(", ")})`,
      );
    }
    if (selection.name.value !== rootField) {
      throw new Error(
        `policy ${policyName}: root fields of a ${subjectKind} policy are ${rootField}`,
      );
    }
    if (aliases.includes(alias)) {
      throw new Error(`policy ${policyName}: department ${alias} aliased twice in one stage`);
    }
    aliases.push(alias);
    fieldsByAlias[alias] = (selection.selectionSet?.selections ?? []).flatMap((field) =>
      field.kind === Kind.FIELD ? [`${typeName}.${field.name.value}`] : [],
    );
  }
  return { aliases, variableNames, fieldsByAlias };
}

/** Checks a policy definition (at load time, so that a broken policy file fails fast). */
export function definePolicy<F extends FactsByDepartment, V extends PolicyVariables>(
  definition: PolicyDefinition<F, V>,
): Policy<F, V> {
  const { name } = definition;
  if (!/^[a-z0-9-]+(\/[a-z0-9-]+)+$/.test(name)) {
    throw new Error(`policy name "${name}" must be lower-case words separated by "/"`);
  }
  if (definition.stages.length === 0) throw new Error(`policy ${name}: no stage`);
  const stagePlans = definition.stages.map((stage) =>
    planStage(name, definition.subjectKind, stage.operation),
  );
  const owner = OWNING_DEPARTMENT[definition.subjectKind];
  if (!stagePlans[0]?.aliases.includes(owner)) {
    throw new Error(`policy ${name}: the first stage must ask the owning register (${owner})`);
  }
  const reasons = definition.requirements.map((requirement) => requirement.reason);
  if (new Set(reasons).size !== reasons.length) {
    throw new Error(`policy ${name}: reason codes must be unique`);
  }
  for (const reason of reasons) {
    if (reason in COMMON_REASONS) throw new Error(`policy ${name}: ${reason} is reserved`);
  }
  const consulted = new Set(stagePlans.flatMap((plan) => plan.aliases));
  return {
    ...definition,
    scope: `verify:${name}`,
    departments: DEPARTMENTS.filter((department) => consulted.has(department)),
    stagePlans,
  };
}

// Three-valued logic (Kleene): `undefined` is "not known".

/** True when all are true; false as soon as one is false, whatever the others. */
export function all(...values: Truth[]): Truth {
  let result: Truth = true;
  for (const value of values) {
    if (value === false) return false;
    if (value === undefined) result = undefined;
  }
  return result;
}

/** True as soon as one is true, whatever the others; false when all are false. */
export function any(...values: Truth[]): Truth {
  let result: Truth = false;
  for (const value of values) {
    if (value === true) return true;
    if (value === undefined) result = undefined;
  }
  return result;
}

export function not(value: Truth): Truth {
  return value === undefined ? undefined : !value;
}

/** A fact of a department's answer, or undefined when that answer was not obtained. */
export function known<T, R>(facts: T | undefined, read: (facts: T) => R): R | undefined {
  return facts === undefined ? undefined : read(facts);
}
