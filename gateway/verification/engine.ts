/**
 * Runs a policy over subjects: its operations through the federated graph, in batches, and its
 * requirements over the facts obtained, giving one verdict per subject in the order asked.
 *
 * Each department answers under its own alias, so a department that does not answer leaves only
 * its own facts missing; a requirement that needs a missing fact is not evaluated (never "no"),
 * and the department is reported in `unavailable`.
 */
import { DEPARTMENTS, type Department } from "../../common/departments.ts";
import { ErrorCode } from "../../common/errors.ts";
import { normalizePersonId, normalizeUscc } from "../../common/ids.ts";
import {
  type FactsByDepartment,
  OWNING_DEPARTMENT,
  type Policy,
  type PolicyVariables,
} from "../../policies/policy.ts";
import type { GatewayRequestContext } from "../department-client.ts";
import type { PlatformServices } from "../platform.ts";

export type Outcome = "ELIGIBLE" | "INELIGIBLE" | "UNDETERMINED" | "INVALID";

export interface DepartmentAnswer {
  department: Department;
  asOf: string;
}

export interface Verdict {
  /** As asked, normalised to upper case. */
  subject: string;
  outcome: Outcome;
  reasons: string[];
  unavailable: Department[];
  /** Null for policies without a quota. */
  quota: number | null;
  checkedAt: string;
  departments: DepartmentAnswer[];
}

export interface VerifyOptions {
  policy: Policy;
  subjects: readonly string[];
  /** Application date, `YYYY-MM-DD`. */
  on: string;
  context: GatewayRequestContext;
  execute: PlatformServices["execute"];
  /** Subjects per federated operation. */
  batchSize: number;
  /** A batch job's pinned issue time: departments' data is current at least as of it. */
  asOf?: string | null;
}

/** An instant as the platform writes it: ISO 8601 UTC to the second. */
export function isoSeconds(at: Date | number = Date.now()): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** What is known about one well-formed subject while its stages run. */
interface SubjectState {
  facts: FactsByDepartment;
  /** Whether the owning register holds the subject; undefined while its answer is missing. */
  exists: boolean | undefined;
  /** Department → when its answer for this subject was obtained. */
  obtained: Map<Department, string>;
  /** Departments asked about the subject whose answer was not obtained. */
  missing: Set<Department>;
}

export async function verifySubjects(options: VerifyOptions): Promise<Verdict[]> {
  const { subjects, batchSize } = options;
  const batches: Promise<Verdict[]>[] = [];
  for (let start = 0; start < subjects.length; start += batchSize) {
    batches.push(verifyBatch(options, subjects.slice(start, start + batchSize)));
  }
  return (await Promise.all(batches)).flat();
}

function normalizer(policy: Policy): (raw: string) => string | null {
  return policy.subjectKind === "PERSON" ? normalizePersonId : normalizeUscc;
}

async function verifyBatch(
  options: VerifyOptions,
  subjects: readonly string[],
): Promise<Verdict[]> {
  const { policy, on } = options;
  const variables = policy.variables(on);
  const normalize = normalizer(policy);
  const asked = subjects.map((raw) => raw.trim().toUpperCase());
  const states = new Map<string, SubjectState>();
  for (const subject of asked) {
    if (normalize(subject) !== null && !states.has(subject)) {
      states.set(subject, {
        facts: {},
        exists: undefined,
        obtained: new Map(),
        missing: new Set(),
      });
    }
  }

  for (const [index, stage] of policy.stages.entries()) {
    const ids = [...states.entries()]
      .filter(
        ([, state]) =>
          index === 0 ||
          (state.exists === true && (stage.neededFor?.(state.facts, variables) ?? true)),
      )
      .map(([id]) => id);
    if (ids.length > 0) await runStage(options, index, ids, variables, states);
  }

  const checkedAt = isoSeconds();
  const answers = new Map<string, DepartmentAnswer[]>();
  return asked.map((subject) => {
    const state = states.get(subject);
    return state
      ? decide(
          policy,
          subject,
          state,
          variables,
          checkedAt,
          consulted(state, answers, options.asOf ?? null),
        )
      : {
          subject,
          outcome: "INVALID",
          reasons: ["INVALID_ID"],
          unavailable: [],
          quota: policy.quota ? 0 : null,
          checkedAt,
          departments: [],
        };
  });
}

/** Runs one stage's operation for `ids` and records, per subject, what each department said. */
async function runStage(
  options: VerifyOptions,
  index: number,
  ids: string[],
  variables: PolicyVariables,
  states: Map<string, SubjectState>,
): Promise<void> {
  const { policy, context } = options;
  const stage = policy.stages[index];
  const plan = policy.stagePlans[index];
  if (!stage || !plan) throw new Error(`policy ${policy.name} has no stage ${index}`);
  const values: Record<string, unknown> = { ...variables, ids };
  const stageVariables = Object.fromEntries(plan.variableNames.map((name) => [name, values[name]]));
  // A context of its own, so that this operation's failures are told apart from others'.
  const stageContext: GatewayRequestContext = {
    ...context,
    unavailable: new Set(),
    answered: new Set(),
  };
  const result = await options.execute(stage.operation, stageVariables, stageContext);
  const at = isoSeconds();
  for (const department of stageContext.answered) context.answered.add(department);
  for (const department of stageContext.unavailable) context.unavailable.add(department);

  // Which answers are missing: whole aliases (a department down, a root field failed) or single
  // subjects (an error at `alias.index`).
  const failedDepartments = new Set<Department>(stageContext.unavailable);
  const failedAliases = new Set<string>();
  const failedItems = new Map<string, Set<number>>();
  for (const error of result.errors ?? []) {
    const code = error.extensions?.code;
    const department = error.extensions?.department;
    if (code === ErrorCode.DepartmentUnavailable && typeof department === "string") {
      failedDepartments.add(department as Department);
    } else {
      context.log.warn(
        { policy: policy.name, stage: index, error: error.message, code, path: error.path },
        "verification operation error",
      );
    }
    const path = error.path ?? [];
    const alias = path[0];
    if (typeof alias !== "string") {
      for (const name of plan.aliases) failedAliases.add(name);
    } else if (typeof path[1] === "number") {
      const items = failedItems.get(alias) ?? new Set<number>();
      failedItems.set(alias, items);
      items.add(path[1]);
    } else {
      failedAliases.add(alias);
    }
  }

  const data = (result.data ?? null) as Record<string, unknown> | null;
  const owner = OWNING_DEPARTMENT[policy.subjectKind];
  // The owner first: whether the subject exists decides how the others' nulls read.
  const aliases = [...plan.aliases].sort((a, b) => Number(b === owner) - Number(a === owner));
  for (const alias of aliases) {
    const list = data?.[alias];
    const aliasMissing =
      !Array.isArray(list) || failedAliases.has(alias) || failedDepartments.has(alias);
    ids.forEach((id, position) => {
      const state = states.get(id) as SubjectState;
      const item = Array.isArray(list) ? list[position] : undefined;
      if (item !== null && item !== undefined && typeof item === "object") {
        state.facts[alias] = item as Record<string, unknown>;
        state.obtained.set(alias, at);
        if (alias === owner) state.exists = true;
        return;
      }
      const missing = aliasMissing || failedItems.get(alias)?.has(position) === true;
      if (alias === owner) {
        if (missing) state.missing.add(alias);
        else {
          // The register answered and has no such subject.
          state.exists = false;
          state.obtained.set(alias, at);
        }
      } else if (state.exists !== false) {
        // A subject the register holds (or may hold) without this department's facts: missing,
        // never read as "no".
        state.missing.add(alias);
      }
    });
  }
}

/**
 * The departments a verdict rests on, with their as-of times. Subjects of a batch share a few
 * combinations, so verdicts share their (read-only) arrays.
 */
function consulted(
  state: SubjectState,
  answers: Map<string, DepartmentAnswer[]>,
  pinnedAsOf: string | null,
): DepartmentAnswer[] {
  let key = "";
  for (const department of DEPARTMENTS) {
    const at = state.obtained.get(department);
    if (at !== undefined) key += `${department}@${pinnedAsOf ?? at};`;
  }
  let departments = answers.get(key);
  if (!departments) {
    departments = DEPARTMENTS.filter((department) => state.obtained.has(department)).map(
      (department) => ({
        department,
        asOf: pinnedAsOf ?? (state.obtained.get(department) as string),
      }),
    );
    answers.set(key, departments);
  }
  return departments;
}

function decide(
  policy: Policy,
  subject: string,
  state: SubjectState,
  variables: PolicyVariables,
  checkedAt: string,
  departments: DepartmentAnswer[],
): Verdict {
  const base = { subject, checkedAt, departments, quota: policy.quota ? 0 : null };
  if (state.exists === false) {
    return { ...base, outcome: "INELIGIBLE", reasons: ["SUBJECT_NOT_FOUND"], unavailable: [] };
  }
  const reasons: string[] = [];
  const unavailable = new Set<Department>();
  let unknown = 0;
  for (const requirement of policy.requirements) {
    const met = requirement.met(state.facts, variables);
    if (met === false) reasons.push(requirement.reason);
    else if (met === undefined) {
      unknown++;
      const missing = requirement.departments.filter((d) => state.missing.has(d));
      const notObtained = requirement.departments.filter((d) => !state.obtained.has(d));
      for (const department of missing.length > 0 ? missing : notObtained) {
        unavailable.add(department);
      }
    }
  }
  const owner = OWNING_DEPARTMENT[policy.subjectKind];
  if (state.exists === undefined) {
    // Without the owning register nothing can be said, not even whether the subject exists.
    unavailable.add(owner);
    for (const department of state.missing) unavailable.add(department);
    return {
      ...base,
      outcome: "UNDETERMINED",
      reasons: [],
      unavailable: DEPARTMENTS.filter((d) => unavailable.has(d)),
    };
  }
  const outcome: Outcome =
    reasons.length > 0 ? "INELIGIBLE" : unknown > 0 ? "UNDETERMINED" : "ELIGIBLE";
  return {
    ...base,
    outcome,
    reasons,
    unavailable: DEPARTMENTS.filter((d) => unavailable.has(d)),
    quota:
      policy.quota === undefined
        ? null
        : outcome === "ELIGIBLE"
          ? policy.quota(state.facts, variables)
          : 0,
  };
}
