/**
 * Which subjects a request touched, for the audit ledger: one access per subject.
 *
 * - Subjects named at the root (`person(id:)`, `people(ids:)`, `organization(uscc:)`,
 *   `organizations(usccs:)`) come from the arguments, so an identity number the registers do not
 *   know is recorded too (outcome `not-found`): the desk asked about that number and learned that
 *   nobody holds it. Arguments that do not even have the shape of a number (the departments refuse
 *   them) touch nobody and are not recorded; the check character is not verified here, so a
 *   mistyped number is recorded as asked (`failed`: the department refused it).
 * - Nested subjects (a spouse, a company's legal representative, a contribution's employer) come
 *   from the response, by the key the rewritten operation fetched under a hidden alias — which is
 *   removed from the response here.
 * - A subject named in a field's argument (`isChildOf(parentId:)`) is recorded for every object
 *   that answered the field: its records were consulted to answer.
 *
 * Outcome per subject: `answered`; `partial` when an error (a department down, a field withheld)
 * lies below it; `not-found` when the register has no such subject; `failed` when an error
 * nulled it — a nested subject too, found in the answer as the departments gave it (before the
 * error nulled its object), since its records were read for the request.
 */
import { Kind, valueFromAST } from "graphql";
import { pathsConcerned } from "../department-client.ts";
import type { AccessOutcome, SubjectAccess } from "../ledger/ledger.ts";
import { type AuthorizedOperation, HIDDEN_SUBJECT_KEY, type SubjectSite } from "./authorization.ts";
import { forEachObjectAt } from "./operation-shape.ts";

const SEPARATOR = "\u0000";

const PERSON_ID_SHAPE = /^\d{17}[\dX]$/;
const USCC_SHAPE = /^[0-9A-HJ-NPQRTUWXY]{18}$/;

/** The subject as recorded: upper case, if it has the shape of an identity number or credit code. */
function normalizeSubject(type: string, value: unknown): string | null {
  if (typeof value !== "string") return null;
  const subject = value.trim().toUpperCase();
  return (type === "Organization" ? USCC_SHAPE : PERSON_ID_SHAPE).test(subject) ? subject : null;
}

/** An error as the executor or the authorizer reports it: only where it lies matters here. */
export interface PathedError {
  readonly path?: ReadonlyArray<string | number> | undefined;
}

interface ErrorPaths {
  /** An error without a path concerns the whole response. */
  all: boolean;
  /** Error paths, joined. */
  exact: Set<string>;
  /** Every prefix of an error path, joined. */
  prefixes: Set<string>;
}

function errorPaths(errors: readonly PathedError[]): ErrorPaths {
  const paths: ErrorPaths = { all: false, exact: new Set(), prefixes: new Set() };
  for (const error of errors) {
    // A department's failure on a fetch for every item of a list concerns those items' objects,
    // which its path (the list) does not tell.
    const concerned = pathsConcerned(error);
    if (concerned.length === 0) {
      paths.all = true;
      continue;
    }
    for (const path of concerned) {
      let prefix = "";
      for (const key of path) {
        prefix = prefix === "" ? String(key) : `${prefix}${SEPARATOR}${key}`;
        paths.prefixes.add(prefix);
      }
      paths.exact.add(prefix);
    }
  }
  return paths;
}

/** Whether an error lies at, below or above (nulling it) the subject at this response path. */
function erredAt(path: readonly (string | number)[], errors: ErrorPaths): boolean {
  if (errors.all) return true;
  let prefix = "";
  for (const key of path) {
    prefix = prefix === "" ? String(key) : `${prefix}${SEPARATOR}${key}`;
    if (errors.exact.has(prefix)) return true;
  }
  return errors.prefixes.has(prefix);
}

function outcomeOf(
  value: unknown,
  path: () => readonly (string | number)[],
  errors: ErrorPaths | null,
): AccessOutcome {
  const erred = errors !== null && erredAt(path(), errors);
  if (value === null || value === undefined) return erred ? "failed" : "not-found";
  return erred ? "partial" : "answered";
}

function argumentSubjects(site: SubjectSite, variables: Record<string, unknown>): unknown {
  const argument = site.rootArgument ?? site.fieldArgument;
  if (!argument) return undefined;
  const node = argument.field.arguments?.find((arg) => arg.name.value === argument.name);
  if (!node) return undefined;
  // Variables are coerced already; only literals need reading.
  if (node.value.kind === Kind.VARIABLE) return variables[node.value.name.value];
  return valueFromAST(node.value, argument.type, variables);
}

/** The value at a response path, undefined where the path leads nowhere. */
function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

/**
 * `unshaped`: the answer before errors nulled its objects, when any did. A nested subject whose
 * object an error nulled (a fact below it failed) is found there: its records were read for the
 * request, though the desk received nothing of them (outcome `failed`).
 */
export function touchedSubjects(
  data: Record<string, unknown> | null | undefined,
  plan: AuthorizedOperation,
  variables: Record<string, unknown>,
  errors: readonly PathedError[],
  unshaped?: unknown,
): SubjectAccess[] {
  if (plan.sites.length === 0) return [];
  const prefixes = errors.length > 0 ? errorPaths(errors) : null;
  const accesses: SubjectAccess[] = [];
  const seen = new Map<string, number>();
  const add = (subject: string, site: SubjectSite, outcome: AccessOutcome) => {
    const earlier = seen.get(subject);
    if (earlier === undefined) {
      seen.set(subject, accesses.length);
      accesses.push({ subject, fields: site.fields, denied: site.denied, outcome });
      return;
    }
    // The same subject twice in one request (asked twice, or as someone's spouse): one access.
    const access = accesses[earlier] as SubjectAccess;
    accesses[earlier] = {
      subject,
      fields: [...new Set([...access.fields, ...site.fields])],
      denied: [...new Set([...access.denied, ...site.denied])],
      outcome: access.outcome === "answered" ? outcome : access.outcome,
    };
  };

  for (const site of plan.sites) {
    if (site.rootArgument) {
      const key = site.path[0] as string;
      // Not in the answer at all: `@skip`ped or not `@include`d, so nobody's records were asked.
      // (An answer without data, the whole request failed, still records whom it asked about.)
      if (data && !(key in data)) continue;
      const asked = argumentSubjects(site, variables);
      const value = data?.[key];
      if (Array.isArray(asked)) {
        const answers = Array.isArray(value) ? value : [];
        asked.forEach((raw, index) => {
          const subject = normalizeSubject(site.type, raw);
          if (subject) {
            add(
              subject,
              site,
              outcomeOf(answers[index], () => [key, index], prefixes),
            );
          }
        });
      } else {
        const subject = normalizeSubject(site.type, asked);
        if (subject)
          add(
            subject,
            site,
            outcomeOf(value, () => [key], prefixes),
          );
      }
      continue;
    }
    if (site.fieldArgument) {
      // Recorded for each object that answered the field: the question was asked of the
      // subject's records (the same argument for every object, so one access).
      // Objects are found in the unshaped answer when there is one: an error elsewhere in the
      // child (a department down) may have nulled the object after the register answered.
      const { responseKey } = site.fieldArgument;
      const subject = normalizeSubject(site.type, argumentSubjects(site, variables));
      if (!subject) continue;
      forEachObjectAt(unshaped ?? data, site.path, (object, at) => {
        if (object[responseKey] === undefined) return;
        // The object holding the answer as the desk got it: nulled by an error, nothing reached it.
        const holder = unshaped === undefined ? object : valueAt(data, at);
        add(
          subject,
          site,
          holder === null || typeof holder !== "object"
            ? "failed"
            : outcomeOf(
                (holder as Record<string, unknown>)[responseKey],
                () => [...at, responseKey],
                prefixes,
              ),
        );
      });
      continue;
    }
    // Keys are read from the unshaped answer when there is one (an error may have nulled the
    // object holding a key), outcomes from the answer as sent; the hidden key leaves the latter.
    const fromUnshaped = unshaped !== undefined;
    forEachObjectAt(fromUnshaped ? unshaped : data, site.path, (object, at) => {
      const subject = normalizeSubject(site.type, object[HIDDEN_SUBJECT_KEY]);
      if (!fromUnshaped) delete object[HIDDEN_SUBJECT_KEY];
      if (subject) {
        add(
          subject,
          site,
          outcomeOf(fromUnshaped ? valueAt(data, at) : object, () => at, prefixes),
        );
      }
    });
    if (fromUnshaped) {
      forEachObjectAt(data, site.path, (object) => {
        delete object[HIDDEN_SUBJECT_KEY];
      });
    }
  }
  return accesses;
}
