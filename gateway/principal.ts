/**
 * Who is asking, as the gateway established it: a service desk acting for a declared purpose, a
 * citizen reading their own access log, or (security off, development and benchmarks only) an
 * open principal holding every scope.
 */
export interface Principal {
  kind: "desk" | "citizen" | "open";
  /** Registered desk id (desks only). */
  deskId: string | null;
  deskName: string | null;
  /** Purpose code declared in `X-Purpose` (desks only). */
  purpose: string | null;
  /** Legal basis text of the purpose, as registered. */
  legalBasis: string | null;
  /** Application or case number from `X-Case-Id`, when given. */
  caseId: string | null;
  /** Scopes the purpose grants; `*` grants every scope. */
  scopes: ReadonlySet<string>;
  /** The citizen's own identity number (citizens only). */
  citizenId: string | null;
}

export const OPEN_PRINCIPAL: Principal = {
  kind: "open",
  deskId: null,
  deskName: null,
  purpose: null,
  legalBasis: null,
  caseId: null,
  scopes: new Set(["*"]),
  citizenId: null,
};

export function hasScope(principal: Principal, scope: string): boolean {
  return principal.scopes.has("*") || principal.scopes.has(scope);
}

/** True when the principal holds every scope of at least one of the sets (OR of ANDs). */
export function satisfiesScopes(
  principal: Principal,
  sets: readonly (readonly string[])[],
): boolean {
  return sets.some((set) => set.every((scope) => hasScope(principal, scope)));
}
