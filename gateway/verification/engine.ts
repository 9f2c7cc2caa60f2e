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

/**
 * A policy as the engine runs it: departments as bit positions (bit `i` is `DEPARTMENTS[i]`), so
 * that what is known about a subject fits in a few integers instead of a Map and a Set each.
 */
interface CompiledPolicy {
  owner: number;
  /** Per stage, its aliases with the owner first: whether the subject exists decides how the others' nulls read. */
  stageAliases: ReadonlyArray<ReadonlyArray<{ alias: Department; bit: number; shift: number }>>;
  /** Per requirement, the departments it may need. */
  requirementMasks: readonly number[];
  /** Departments of a mask, in DEPARTMENTS order (shared, read-only arrays). */
  departmentsOf: Department[][];
}

const compiled = new WeakMap<Policy, CompiledPolicy>();

function bitOf(department: Department): number {
  return 1 << DEPARTMENTS.indexOf(department);
}

function compile(policy: Policy): CompiledPolicy {
  let found = compiled.get(policy);
  if (found) return found;
  // Four bits per department say which stage's answer it is (see SubjectState.answeredIn).
  if (policy.stages.length > 15) throw new Error(`policy ${policy.name}: at most 15 stages`);
  const owner = OWNING_DEPARTMENT[policy.subjectKind];
  found = {
    owner: bitOf(owner),
    stageAliases: policy.stagePlans.map((plan) =>
      [...plan.aliases]
        .sort((a, b) => Number(b === owner) - Number(a === owner))
        .map((alias) => ({ alias, bit: bitOf(alias), shift: 4 * DEPARTMENTS.indexOf(alias) })),
    ),
    requirementMasks: policy.requirements.map((requirement) =>
      requirement.departments.reduce((mask, department) => mask | bitOf(department), 0),
    ),
    departmentsOf: Array.from({ length: 1 << DEPARTMENTS.length }, (_, mask) =>
      DEPARTMENTS.filter((_department, index) => (mask & (1 << index)) !== 0),
    ),
  };
  compiled.set(policy, found);
  return found;
}

/** What is known about one well-formed subject while its stages run. */
interface SubjectState {
  id: string;
  facts: FactsByDepartment;
  /** Whether the owning register holds the subject; undefined while its answer is missing. */
  exists: boolean | undefined;
  /** Departments whose answer was obtained (bits). */
  obtained: number;
  /**
   * Which stage each department's answer came from: four bits per department (the stage's index
   * plus one), so the time of each answer is that of its stage.
   */
  answeredIn: number;
  /** Departments asked about the subject whose answer was not obtained (bits). */
  missing: number;
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
  const plan = compile(policy);
  const variables = policy.variables(on);
  const normalize = normalizer(policy);
  // "As given (normalised to upper case)" (docs/spec/policies.md): a number padded with spaces
  // is not a well-formed one, and is answered INVALID as given.
  const asked = subjects.map((raw) => raw.toUpperCase());
  const states = new Map<string, SubjectState>();
  for (const subject of asked) {
    if (!states.has(subject) && normalize(subject) !== null) {
      states.set(subject, {
        id: subject,
        facts: {},
        exists: undefined,
        obtained: 0,
        answeredIn: 0,
        missing: 0,
      });
    }
  }

  /** When each stage's answers were obtained. */
  const stageTimes: string[] = [];
  for (const [index, stage] of policy.stages.entries()) {
    const needed: SubjectState[] = [];
    for (const state of states.values()) {
      if (
        index === 0 ||
        (state.exists === true && (stage.neededFor?.(state.facts, variables) ?? true))
      ) {
        needed.push(state);
      }
    }
    if (needed.length > 0) {
      stageTimes[index] = await runStage(options, plan, index, needed, variables);
    }
  }

  const checkedAt = isoSeconds();
  const answers = new Map<number, DepartmentAnswer[]>();
  const quota = policy.quota ? 0 : null;
  return asked.map((subject): Verdict => {
    const state = states.get(subject);
    return state
      ? decide(
          policy,
          plan,
          state,
          variables,
          checkedAt,
          consulted(state, answers, stageTimes, options.asOf ?? null),
        )
      : {
          subject,
          outcome: "INVALID",
          reasons: ["INVALID_ID"],
          unavailable: [],
          quota,
          checkedAt,
          departments: [],
        };
  });
}

/**
 * Runs one stage's operation for the subjects that need it and records, per subject, what each
 * department said; resolves with the time the answers were obtained.
 */
async function runStage(
  options: VerifyOptions,
  plan: CompiledPolicy,
  index: number,
  needed: SubjectState[],
  variables: PolicyVariables,
): Promise<string> {
  const { policy, context } = options;
  const stage = policy.stages[index];
  const stagePlan = policy.stagePlans[index];
  if (!stage || !stagePlan) throw new Error(`policy ${policy.name} has no stage ${index}`);
  const ids = needed.map((state) => state.id);
  const values: Record<string, unknown> = { ...variables, ids };
  const stageVariables = Object.fromEntries(
    stagePlan.variableNames.map((name) => [name, values[name]]),
  );
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
      for (const name of stagePlan.aliases) failedAliases.add(name);
    } else if (typeof path[1] === "number") {
      const items = failedItems.get(alias) ?? new Set<number>();
      failedItems.set(alias, items);
      items.add(path[1]);
    } else {
      failedAliases.add(alias);
    }
  }

  const data = (result.data ?? null) as Record<string, unknown> | null;
  const stageMark = index + 1;
  for (const { alias, bit, shift } of plan.stageAliases[index] ?? []) {
    const list = data?.[alias];
    const isList = Array.isArray(list);
    const aliasMissing = !isList || failedAliases.has(alias) || failedDepartments.has(alias);
    const failed = failedItems.get(alias);
    const isOwner = bit === plan.owner;
    const clear = ~(15 << shift);
    const mark = stageMark << shift;
    for (let position = 0; position < needed.length; position++) {
      const state = needed[position] as SubjectState;
      const item: unknown = isList ? list[position] : undefined;
      if (item !== null && item !== undefined && typeof item === "object") {
        state.facts[alias] = item as Record<string, unknown>;
        state.obtained |= bit;
        state.answeredIn = (state.answeredIn & clear) | mark;
        if (isOwner) state.exists = true;
        continue;
      }
      const missing = aliasMissing || failed?.has(position) === true;
      if (isOwner) {
        if (missing) state.missing |= bit;
        else {
          // The register answered and has no such subject.
          state.exists = false;
          state.obtained |= bit;
          state.answeredIn = (state.answeredIn & clear) | mark;
        }
      } else if (state.exists !== false) {
        // A subject the register holds (or may hold) without this department's facts: missing,
        // never read as "no".
        state.missing |= bit;
      }
    }
  }
  return at;
}

/**
 * The departments a verdict rests on, with their as-of times. Subjects of a batch share a few
 * combinations, so verdicts share their (read-only) arrays.
 */
function consulted(
  state: SubjectState,
  answers: Map<number, DepartmentAnswer[]>,
  stageTimes: readonly string[],
  pinnedAsOf: string | null,
): DepartmentAnswer[] {
  let departments = answers.get(state.answeredIn);
  if (!departments) {
    departments = [];
    for (const [index, department] of DEPARTMENTS.entries()) {
      const stage = (state.answeredIn >> (4 * index)) & 15;
      if (stage !== 0) {
        departments.push({ department, asOf: pinnedAsOf ?? (stageTimes[stage - 1] as string) });
      }
    }
    answers.set(state.answeredIn, departments);
  }
  return departments;
}

function decide(
  policy: Policy,
  plan: CompiledPolicy,
  state: SubjectState,
  variables: PolicyVariables,
  checkedAt: string,
  departments: DepartmentAnswer[],
): Verdict {
  const subject = state.id;
  if (state.exists === false) {
    return {
      subject,
      outcome: "INELIGIBLE",
      reasons: ["SUBJECT_NOT_FOUND"],
      unavailable: [],
      quota: policy.quota ? 0 : null,
      checkedAt,
      departments,
    };
  }
  const reasons: string[] = [];
  let unavailable = 0;
  let unknown = 0;
  const { requirements } = policy;
  for (let index = 0; index < requirements.length; index++) {
    const met = (requirements[index] as Policy["requirements"][number]).met(state.facts, variables);
    if (met === false) reasons.push((requirements[index] as { reason: string }).reason);
    else if (met === undefined) {
      unknown++;
      const needs = plan.requirementMasks[index] as number;
      const missing = needs & state.missing;
      unavailable |= missing !== 0 ? missing : needs & ~state.obtained;
    }
  }
  if (state.exists === undefined) {
    // Without the owning register nothing can be said, not even whether the subject exists.
    return {
      subject,
      outcome: "UNDETERMINED",
      reasons: [],
      unavailable: [...(plan.departmentsOf[unavailable | plan.owner | state.missing] ?? [])],
      quota: policy.quota ? 0 : null,
      checkedAt,
      departments,
    };
  }
  const outcome: Outcome =
    reasons.length > 0 ? "INELIGIBLE" : unknown > 0 ? "UNDETERMINED" : "ELIGIBLE";
  return {
    subject,
    outcome,
    reasons,
    unavailable: unavailable === 0 ? [] : [...(plan.departmentsOf[unavailable] ?? [])],
    quota:
      policy.quota === undefined
        ? null
        : outcome === "ELIGIBLE"
          ? policy.quota(state.facts, variables)
          : 0,
    checkedAt,
    departments,
  };
}
