/** Gateway configuration, from the environment (documented in the README). */
import { DEPARTMENTS, type Department, defaultPort, urlVariable } from "../common/departments.ts";

export interface DepartmentEndpoint {
  url: string;
  timeoutMs: number;
}

export interface GatewayConfig {
  port: number;
  host: string;
  production: boolean;
  departments: Record<Department, DepartmentEndpoint>;
  retries: number;
  connectionsPerDepartment: number;
  breakerResetMs: number;
  /** Introspection and the landing page (default: on in development, off in production). */
  introspection: boolean;
  landingPage: boolean;
}

function integer(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a whole number, got "${raw}"`);
  return value;
}

function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  return raw === "1" || raw.toLowerCase() === "true";
}

export function gatewayConfigFromEnv(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  const production = process.env.NODE_ENV === "production";
  const defaultTimeout = integer("DEPARTMENT_TIMEOUT_MS", 5000);
  const departments = Object.fromEntries(
    DEPARTMENTS.map((department) => [
      department,
      {
        url:
          process.env[urlVariable(department)] ??
          `http://127.0.0.1:${defaultPort(department)}/graphql`,
        timeoutMs: integer(`${department.toUpperCase()}_TIMEOUT_MS`, defaultTimeout),
      },
    ]),
  ) as Record<Department, DepartmentEndpoint>;
  return {
    port: integer("PORT", 4000),
    host: process.env.HOST ?? "127.0.0.1",
    production,
    departments,
    retries: integer("DEPARTMENT_RETRIES", 2),
    connectionsPerDepartment: integer("DEPARTMENT_CONNECTIONS", 16),
    breakerResetMs: integer("DEPARTMENT_BREAKER_RESET_MS", 5000),
    introspection: flag("INTROSPECTION", !production),
    landingPage: flag("LANDING_PAGE", !production),
    ...overrides,
  };
}
