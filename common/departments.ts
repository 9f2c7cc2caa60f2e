/** The departments that publish a subgraph, in the order of their default ports (4001–4006). */
export const DEPARTMENTS = ["hukou", "traffic", "social", "tax", "market", "civil"] as const;
export type Department = (typeof DEPARTMENTS)[number];

export const DEPARTMENT_NAMES: Record<Department, string> = {
  hukou: "Public Security Bureau, household registration (公安 户籍)",
  traffic: "Public Security, traffic management (公安 交管)",
  social: "Human Resources and Social Security Bureau (人力社保)",
  tax: "Taxation Bureau (税务)",
  market: "Market Regulation Administration (市场监管)",
  civil: "Civil Affairs Bureau (民政)",
};

export function isDepartment(value: string): value is Department {
  return (DEPARTMENTS as readonly string[]).includes(value);
}

/** Default port of a department's subgraph: 4001 for hukou … 4006 for civil. */
export function defaultPort(department: Department): number {
  return 4001 + DEPARTMENTS.indexOf(department);
}

/** Environment variable that overrides a department's URL at the gateway, e.g. `HUKOU_URL`. */
export function urlVariable(department: Department): string {
  return `${department.toUpperCase()}_URL`;
}

/** Subgraphs the platform itself serves inside the gateway (see gateway/platform.ts). */
export const PLATFORM_SUBGRAPHS = ["ledger", "verification"] as const;
export type PlatformSubgraphName = (typeof PLATFORM_SUBGRAPHS)[number];
