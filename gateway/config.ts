/** Gateway configuration, from the environment (documented in the README). */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEPARTMENTS, type Department, defaultPort, urlVariable } from "../common/departments.ts";
import { isProduction } from "../common/environment.ts";
import { metricsTokenFromEnv } from "../common/metrics.ts";
import { dataDir } from "../common/sqlite.ts";

export interface DepartmentEndpoint {
  url: string;
  timeoutMs: number;
}

/** Limits on what one request may ask (each refused with `LIMIT_EXCEEDED`). */
export interface OperationLimits {
  /** Deepest field nesting of an operation (fragments count as they expand). */
  maxDepth: number;
  /** Aliased fields in one operation: aliases would otherwise multiply `person(id:)` calls. */
  maxAliases: number;
  /** Lexical tokens of a document, counted while parsing, so a huge document stops early. */
  maxTokens: number;
  /** Elements of any list argument, e.g. `people(ids:)`, `organizations(usccs:)`. */
  maxListSize: number;
  /** The most an operation's estimated cost may be (gateway/security/cost.ts). */
  maxCost: number;
  /** A list's size in the estimate when neither its arguments nor its `@listSize` say. */
  costListSize: number;
  /** Bytes of a request body (HTTP 413). */
  maxBodyBytes: number;
}

/** External identity provider whose JWTs authenticate desks (instead of desk keys). */
export interface DeskJwtConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

/** Who issues citizen tokens (for `myAccessLog`). */
export interface CitizenTokenConfig {
  issuer: string;
  audience: string;
  /** JWKS of the citizen identity provider; when absent, `devSecret` verifies tokens (HS256). */
  jwksUrl: string | null;
  /** Development only: the shared secret `npm run citizen-token` signs with. */
  devSecret: string | null;
}

export interface SecurityConfig {
  /** False only with `SECURITY=off` (development and benchmarks; refused in production). */
  enabled: boolean;
  /** Registered desks (`DESKS_FILE`). */
  desksFile: string;
  /** Registered (persisted, trusted) operation documents, Apollo manifest format, when any. */
  operationsFile: string | null;
  deskJwt: DeskJwtConfig | null;
  citizen: CitizenTokenConfig;
  limits: OperationLimits;
  /** Requests per desk per window unless the desk's registration says otherwise. */
  rateLimit: { max: number; windowMs: number };
  /**
   * Failed authentications (401) from one address per window; past it the address is refused
   * (429) until the window ends, whatever credentials it sends: no online guessing of keys.
   */
  failedAuthentications: { max: number; windowMs: number };
  /** `full`: every commit fsynced (survives power loss); `normal`: survives a process crash. */
  auditSync: "full" | "normal";
  /**
   * How long the ledger's writer waits for audit.db's lock when another process holds it, before
   * leaving the journal's lines for its next move (a tenth of a second later).
   */
  auditBusyTimeoutMs: number;
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
  /** Folder of the department databases and of `audit.db`. */
  dataDir: string;
  /**
   * Who runs query plans: `compiled` (gateway/execution, the default) or `apollo`
   * (`@apollo/gateway`'s executeQueryPlan, for comparison).
   */
  executor: "compiled" | "apollo";
  /**
   * Send a lookup's entity fetches (`person(id:)`'s facts from the other departments) beside the
   * household register's fetch instead of after it, and use them once it confirms the subject
   * (`EARLY_LOOKUPS`, default on). Off, departments hear only of subjects the register knows.
   */
  earlyLookups: boolean;
  security: SecurityConfig;
  /**
   * Browser origins allowed to call the gateway in development (`CORS_ORIGINS`, comma-separated;
   * default Apollo Sandbox), besides pages served from this machine (localhost). None in
   * production.
   */
  corsOrigins: string[];
  /**
   * Bearer token `GET /metrics` requires (`METRICS_TOKEN`). Without one, development serves the
   * metrics to anybody who can reach the gateway and production does not serve them.
   */
  metricsToken: string | null;
}

const CONFIG_DIR = fileURLToPath(new URL("../config/", import.meta.url));
/** The development desks (`dev-desk-key`, `dev-lottery-key`); refused in production. */
export const DEVELOPMENT_DESKS_FILE = `${CONFIG_DIR}desks.development.json`;
/** The development citizen-token secret; `npm run citizen-token` signs with it. */
export const DEVELOPMENT_CITIZEN_SECRET = "mianzheng-development-citizen-token-secret";
export const DEVELOPMENT_CITIZEN_ISSUER = "mianzheng-development-citizen-login";
export const CITIZEN_AUDIENCE = "mianzheng";
/** The shortest rate-limit window: a window of 0 (or of a few ms) would switch the limit off. */
export const MIN_WINDOW_MS = 1000;

/**
 * A whole number of at least `min` (digits only: `0x10`, `1e3` and a blank are refused, not read
 * as 16, 1000 and 0 — a window of 0 ms would switch its limit off).
 */
export function integer(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  // Digits and nothing else: `1e3`, `0x100`, ` 10` or `10 ` would each be read as some number
  // other than the one an operator meant to write, or hide a stray character from a file.
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(
      `${name} must be a whole number${min > 0 ? ` of at least ${min}` : ""}, got "${raw}"`,
    );
  }
  return value;
}

const FLAG_VALUES: Readonly<Record<string, boolean>> = {
  "1": true,
  true: true,
  on: true,
  yes: true,
  "0": false,
  false: false,
  off: false,
  no: false,
};

/** A URL, checked here so that a bad one is refused naming its variable. */
function url(name: string, value: string): string {
  if (!URL.canParse(value)) throw new Error(`${name} is not a URL: "${value}"`);
  return value;
}

function required(name: string, when: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`${name} must be set ${when}`);
  return value;
}

/** On or off; anything else is refused (`SECURITY=enabled` must not read as off). */
function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = FLAG_VALUES[raw.trim().toLowerCase()];
  if (value === undefined) {
    throw new Error(`${name} must be on or off (1/0, true/false, on/off, yes/no), got "${raw}"`);
  }
  return value;
}

function securityConfigFromEnv(production: boolean): SecurityConfig {
  const desksFile = process.env.DESKS_FILE ?? (production ? "" : DEVELOPMENT_DESKS_FILE);
  const defaultOperations = `${CONFIG_DIR}operations.json`;
  const jwksUrl = process.env.DESK_JWKS_URL;
  const sync = (process.env.AUDIT_SYNC ?? "full").toLowerCase();
  if (sync !== "full" && sync !== "normal") {
    throw new Error(`AUDIT_SYNC must be "full" or "normal", got "${sync}"`);
  }
  return {
    enabled: flag("SECURITY", true),
    desksFile,
    operationsFile:
      process.env.PERSISTED_OPERATIONS_FILE ??
      (existsSync(defaultOperations) ? defaultOperations : null),
    deskJwt: jwksUrl
      ? {
          jwksUrl: url("DESK_JWKS_URL", jwksUrl),
          issuer: required("DESK_JWT_ISSUER", "with DESK_JWKS_URL"),
          audience: process.env.DESK_JWT_AUDIENCE || "mianzheng",
        }
      : null,
    citizen: {
      issuer: process.env.CITIZEN_TOKEN_ISSUER ?? (production ? "" : DEVELOPMENT_CITIZEN_ISSUER),
      audience: process.env.CITIZEN_TOKEN_AUDIENCE || CITIZEN_AUDIENCE,
      jwksUrl: process.env.CITIZEN_JWKS_URL
        ? url("CITIZEN_JWKS_URL", process.env.CITIZEN_JWKS_URL)
        : null,
      devSecret: production
        ? null
        : (process.env.CITIZEN_TOKEN_SECRET ?? DEVELOPMENT_CITIZEN_SECRET),
    },
    limits: {
      maxDepth: integer("MAX_DEPTH", 8, 1),
      maxAliases: integer("MAX_ALIASES", 30, 1),
      maxTokens: integer("MAX_TOKENS", 5000, 1),
      maxListSize: integer("MAX_LIST_SIZE", 1000, 1),
      maxCost: integer("MAX_COST", 100_000, 1),
      costListSize: integer("COST_LIST_SIZE", 10, 0),
      maxBodyBytes: integer("MAX_BODY_BYTES", 1024 * 1024, 1),
    },
    rateLimit: {
      max: integer("RATE_LIMIT_MAX", 600, 1),
      windowMs: integer("RATE_LIMIT_WINDOW_MS", 60_000, MIN_WINDOW_MS),
    },
    failedAuthentications: {
      max: integer("AUTH_FAILURES_MAX", 20, 1),
      windowMs: integer("AUTH_FAILURES_WINDOW_MS", 60_000, MIN_WINDOW_MS),
    },
    auditSync: sync,
    auditBusyTimeoutMs: integer("AUDIT_BUSY_TIMEOUT_MS", 5000),
  };
}

function executorFromEnv(): GatewayConfig["executor"] {
  const executor = process.env.GATEWAY_EXECUTOR ?? "compiled";
  if (executor !== "compiled" && executor !== "apollo") {
    throw new Error(`GATEWAY_EXECUTOR must be "compiled" or "apollo", got "${executor}"`);
  }
  return executor;
}

/** Overrides of the environment's configuration (tests, embedding); `security` merges per key. */
export type GatewayOverrides = Partial<Omit<GatewayConfig, "security">> & {
  security?: Partial<Omit<SecurityConfig, "limits">> & { limits?: Partial<OperationLimits> };
};

export function gatewayConfigFromEnv(overrides: GatewayOverrides = {}): GatewayConfig {
  const production = overrides.production ?? isProduction();
  const defaultTimeout = integer("DEPARTMENT_TIMEOUT_MS", 5000, 1);
  const departments = Object.fromEntries(
    DEPARTMENTS.map((department) => [
      department,
      {
        url: url(
          urlVariable(department),
          process.env[urlVariable(department)] ??
            `http://127.0.0.1:${defaultPort(department)}/graphql`,
        ),
        timeoutMs: integer(`${department.toUpperCase()}_TIMEOUT_MS`, defaultTimeout, 1),
      },
    ]),
  ) as Record<Department, DepartmentEndpoint>;
  const security = securityConfigFromEnv(production);
  const limits = { ...security.limits, ...overrides.security?.limits };
  return {
    port: integer("PORT", 4000),
    host: process.env.HOST ?? "127.0.0.1",
    production,
    departments,
    retries: integer("DEPARTMENT_RETRIES", 2),
    connectionsPerDepartment: integer("DEPARTMENT_CONNECTIONS", 16, 1),
    breakerResetMs: integer("DEPARTMENT_BREAKER_RESET_MS", 5000),
    introspection: flag("INTROSPECTION", !production),
    landingPage: flag("LANDING_PAGE", !production),
    corsOrigins: (process.env.CORS_ORIGINS ?? "https://studio.apollographql.com")
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean),
    dataDir: dataDir(),
    executor: executorFromEnv(),
    earlyLookups: flag("EARLY_LOOKUPS", true),
    metricsToken: metricsTokenFromEnv(),
    ...overrides,
    security: { ...security, ...overrides.security, limits },
  };
}

/** Why this configuration must not serve production, or null when it may. */
export function productionProblem(config: GatewayConfig): string | null {
  if (!config.production) return null;
  if (!config.security.enabled) return "SECURITY=off is refused in production";
  if (!config.security.desksFile) return "DESKS_FILE must name the registered desks in production";
  const keySets: Array<[string, string | null | undefined]> = [
    ["DESK_JWKS_URL", config.security.deskJwt?.jwksUrl],
    ["CITIZEN_JWKS_URL", config.security.citizen.jwksUrl],
  ];
  for (const [name, value] of keySets) {
    // Whoever can change the keys on their way can sign tokens for any desk or citizen.
    if (value && !fetchedSafely(value)) {
      return `${name} must be an https URL (or one on this machine), got "${value}"`;
    }
  }
  return null;
}

/** https, or http to this machine (a sidecar's key set crosses no network). */
function fetchedSafely(address: string): boolean {
  const { protocol, hostname } = new URL(address);
  if (protocol === "https:") return true;
  return (
    protocol === "http:" &&
    (hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname))
  );
}
