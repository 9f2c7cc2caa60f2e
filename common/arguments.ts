/**
 * Checks of field arguments that GraphQL's type system cannot express. Each failure names the
 * argument so that a desk sees which of its inputs was wrong.
 */
import { todayInBeijing } from "./clock.ts";
import { badUserInput } from "./errors.ts";
import { normalizePersonId, normalizeUscc, personIdProblem, usccProblem } from "./ids.ts";
import { isRegionCode, regionPrefix } from "./regions.ts";

export function personIdArgument(argument: string, value: string): string {
  const id = normalizePersonId(value);
  if (id === null) {
    throw badUserInput(
      argument,
      `not a citizen identity number (${personIdProblem(value)})`,
      value,
    );
  }
  return id;
}

export function usccArgument(argument: string, value: string): string {
  const code = normalizeUscc(value);
  if (code === null) {
    throw badUserInput(argument, `not a unified social credit code (${usccProblem(value)})`, value);
  }
  return code;
}

/** Validates every element first, so one bad element fails the list before any lookup. */
export function listArgument(
  argument: string,
  values: readonly string[],
  normalize: (argument: string, value: string) => string,
): string[] {
  return values.map((value, index) => normalize(`${argument}[${index}]`, value));
}

/** A region argument as the code prefix it covers (see `regionPrefix`). */
export function regionArgument(argument: string, value: string): string {
  if (!isRegionCode(value)) {
    throw badUserInput(argument, "not a GB/T 2260 division code", value);
  }
  return regionPrefix(value);
}

/** The `on` date of a fact: the given date or today in Beijing. */
export function dayArgument(value: string | null | undefined): string {
  return value ?? todayInBeijing();
}
