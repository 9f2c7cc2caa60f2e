/**
 * Which kind of deployment this is, from `NODE_ENV`. Production is strict (no development desks,
 * secrets, CORS or landing page), and everything else is lenient, so a typo must not fall on the
 * lenient side: `production` (in any case) is production; unset, empty, `development` or `test`
 * is development; any other value is refused.
 */
export function isProduction(): boolean {
  const raw = process.env.NODE_ENV;
  const value = (raw ?? "").trim().toLowerCase();
  if (value === "production") return true;
  if (value === "" || value === "development" || value === "test") return false;
  throw new Error(
    `NODE_ENV must be "production", "development" or "test" (or unset, for development), got "${raw}"`,
  );
}
