/**
 * Value types of the record contract (`records.md`): dates, months and money. Money is kept in
 * integer fen (1/100 yuan) so that no sum ever passes through a binary float.
 */
import { isCalendarDate } from "./ids.ts";

export { isCalendarDate };

const YEAR_MONTH_SHAPE = /^(\d{4})-(0[1-9]|1[0-2])$/;
const MONEY_SHAPE = /^(0|[1-9]\d{0,14})(?:\.(\d{1,2}))?$/;

export function isYearMonth(value: string): boolean {
  return YEAR_MONTH_SHAPE.test(value);
}

/** `"1234.5"` → 123450 fen; null when the string is not a non-negative yuan amount. */
export function parseMoney(value: string): number | null {
  const match = MONEY_SHAPE.exec(value);
  if (!match) return null;
  const yuan = Number(match[1]);
  const fen = Number((match[2] ?? "").padEnd(2, "0"));
  const total = yuan * 100 + fen;
  return Number.isSafeInteger(total) ? total : null;
}

/** 123450 fen → `"1234.50"`. */
export function formatMoney(fen: number): string {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** Month index (year*12 + month-1) of `YYYY-MM` or of the month of `YYYY-MM-DD`. */
export function monthIndex(value: string): number {
  return Number(value.slice(0, 4)) * 12 + Number(value.slice(5, 7)) - 1;
}

export function yearMonthOfIndex(index: number): string {
  const year = Math.floor(index / 12);
  return `${year}-${String((index % 12) + 1).padStart(2, "0")}`;
}

/** The month `delta` months after `yearMonth` (negative for before). */
export function addMonths(yearMonth: string, delta: number): string {
  return yearMonthOfIndex(monthIndex(yearMonth) + delta);
}

/** Whole years between a birth date and a day: the birthday itself counts. */
export function ageOn(birthDate: string, on: string): number {
  let age = Number(on.slice(0, 4)) - Number(birthDate.slice(0, 4));
  if (on.slice(5) < birthDate.slice(5)) age -= 1;
  return age;
}

/**
 * A value a desk sent, for an error message: a string quoted and cut at 40 characters, a list or
 * an object named, never written out (a list nested 100,000 deep would overflow the stack, a
 * megabyte of text would come back in the error).
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (Array.isArray(value)) return "a list";
  if (value !== null && typeof value === "object") return "an object";
  return String(value);
}
