/**
 * Identifiers of the two kinds of subject the platform knows: the citizen identity number
 * (GB 11643-1999) and the unified social credit code (GB 32100-2015). Validation includes the check
 * character, so a mistyped digit is caught before any department is asked.
 */

const PERSON_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2] as const;
const PERSON_ID_CHECK = "10X98765432";
const PERSON_ID_SHAPE = /^\d{17}[\dX]$/;

const USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28] as const;
const USCC_SHAPE = /^[0-9A-HJ-NPQRTUWXY]{18}$/;

/** The check character of the first 17 characters of a citizen identity number. */
export function personIdCheckCharacter(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (first17.charCodeAt(i) - 48) * (PERSON_ID_WEIGHTS[i] ?? 0);
  return PERSON_ID_CHECK[sum % 11] as string;
}

/** Why a string is not a citizen identity number, or null when it is one. */
export function personIdProblem(raw: string): string | null {
  const id = raw.toUpperCase();
  if (!PERSON_ID_SHAPE.test(id)) return "must be 17 digits and a check character (0-9 or X)";
  if (!isCalendarDate(`${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`)) {
    return "birth date digits are not a real date";
  }
  if (personIdCheckCharacter(id) !== id[17]) return "check character does not match";
  return null;
}

/** The normalised (upper-case X) identity number, or null when it is not valid. */
export function normalizePersonId(raw: string): string | null {
  return personIdProblem(raw) === null ? raw.toUpperCase() : null;
}

export function isPersonId(raw: string): boolean {
  return personIdProblem(raw) === null;
}

/** Birth date encoded in a valid identity number. */
export function birthDateOfPersonId(id: string): string {
  return `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`;
}

/** Gender encoded in the sequence digit: odd is male, even is female. */
export function genderOfPersonId(id: string): "M" | "F" {
  return (id.charCodeAt(16) - 48) % 2 === 1 ? "M" : "F";
}

/** Builds a valid identity number from its parts (used by the demo population). */
export function makePersonId(region: string, birthDate: string, sequence: number): string {
  const first17 = `${region}${birthDate.replaceAll("-", "")}${String(sequence).padStart(3, "0")}`;
  return first17 + personIdCheckCharacter(first17);
}

export function usccCheckCharacter(first17: string): string | null {
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const value = USCC_CHARSET.indexOf(first17[i] ?? "");
    if (value < 0) return null;
    sum += value * (USCC_WEIGHTS[i] ?? 0);
  }
  return USCC_CHARSET[(31 - (sum % 31)) % 31] as string;
}

/** Why a string is not a unified social credit code, or null when it is one. */
export function usccProblem(raw: string): string | null {
  const code = raw.toUpperCase();
  if (!USCC_SHAPE.test(code)) {
    return "must be 18 characters from 0-9 and A-Y without I, O, S, V, Z";
  }
  if (usccCheckCharacter(code.slice(0, 17)) !== code[17]) return "check character does not match";
  return null;
}

export function normalizeUscc(raw: string): string | null {
  return usccProblem(raw) === null ? raw.toUpperCase() : null;
}

export function isUscc(raw: string): boolean {
  return usccProblem(raw) === null;
}

/** Builds a valid code: registration authority 9 (market regulation), kind 1 (enterprise). */
export function makeUscc(region: string, organizationCode: string): string {
  const first17 = `91${region}${organizationCode}`;
  const check = usccCheckCharacter(first17);
  if (check === null || first17.length !== 17)
    throw new Error(`cannot build a USCC from ${first17}`);
  return first17 + check;
}

const DATE_SHAPE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** True for a real `YYYY-MM-DD` calendar date (leap years included). */
export function isCalendarDate(value: string): boolean {
  const match = DATE_SHAPE.exec(value);
  if (!match) return false;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12 || day < 1 || year < 1800) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const max = month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
  return day <= max;
}
