/**
 * The platform's notion of "today". Government dates are Beijing dates, whatever the host's time
 * zone; tests set the clock rather than mocking Date.
 */

let fixedNow: Date | null = null;

export function now(): Date {
  return fixedNow ?? new Date();
}

/** For tests and reproducible runs: fix the clock (or pass null to release it). */
export function setClock(at: Date | string | null): void {
  fixedNow = at === null ? null : new Date(at);
}

const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

/** Today's date in Beijing (UTC+8, no daylight saving) as `YYYY-MM-DD`. */
export function todayInBeijing(): string {
  return new Date(now().getTime() + BEIJING_OFFSET_MS).toISOString().slice(0, 10);
}
