/**
 * The whole platform for end-to-end tests: six department subgraphs and the gateway, each on its
 * own port 0 listener, talking real (signed) HTTP to one another over loopback.
 */
import type { FastifyInstance } from "fastify";
import { DEPARTMENTS, type Department } from "../common/departments.ts";
import { buildGateway, type GatewayOptions } from "../gateway/app.ts";
import type { DepartmentEndpoint } from "../gateway/config.ts";
import { departmentModules } from "../subgraphs/registry.ts";

/** The development desks of `config/desks.development.json`. */
export const DEV_DESK = { authorization: "Bearer dev-desk-key", "x-purpose": "demo" };
export const LOTTERY_DESK = { authorization: "Bearer dev-lottery-key", "x-purpose": "car-lottery" };

export interface Platform {
  url: string;
  gateway: FastifyInstance;
  departments: Record<Department, FastifyInstance>;
  /** Resolves once every access acknowledged so far is in audit.db (not only in the journal). */
  ledgerMoved(): Promise<void>;
  /** Stops one department's server (as if it had died). */
  stopDepartment(department: Department): Promise<void>;
  close(): Promise<void>;
  /** POSTs a GraphQL request to the gateway over HTTP, as the development desk unless `headers`
   * are given (they then replace its credentials: `{}` sends none). */
  query<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: { data?: T | null; errors?: PlatformError[] } }>;
}

export interface PlatformError {
  message: string;
  path?: Array<string | number>;
  extensions?: Record<string, unknown>;
}

export async function startPlatform(
  dataDir: string,
  options: Omit<GatewayOptions, "logger"> & {
    /** Departments answered by something else than their server (a stand-in), by URL. */
    standIns?: Partial<Record<Department, DepartmentEndpoint>>;
  } = {},
): Promise<Platform> {
  const departments = {} as Record<Department, FastifyInstance>;
  const endpoints = {} as Record<Department, DepartmentEndpoint>;
  for (const department of DEPARTMENTS) {
    const app = await departmentModules[department].build({ dataDir, logger: false });
    const address = await app.listen({ port: 0, host: "127.0.0.1" });
    departments[department] = app;
    endpoints[department] = { url: `${address}/graphql`, timeoutMs: 2000 };
  }
  const { standIns, ...gatewayOptions } = options;
  let gateway: FastifyInstance;
  try {
    gateway = await buildGateway({
      ...gatewayOptions,
      logger: false,
      config: {
        breakerResetMs: 500,
        dataDir,
        ...options.config,
        departments: { ...endpoints, ...standIns },
      },
    });
  } catch (error) {
    // A gateway that refused to start leaves no department listening behind it.
    await Promise.all(Object.values(departments).map((department) => department.close()));
    throw error;
  }
  const url = `${await gateway.listen({ port: 0, host: "127.0.0.1" })}/graphql`;
  const stopped = new Set<Department>();
  return {
    url,
    gateway,
    departments,
    ledgerMoved: () => gateway.ledger.moved(),
    async stopDepartment(department) {
      stopped.add(department);
      await departments[department].close();
    },
    async close() {
      await gateway.close();
      await Promise.all(
        DEPARTMENTS.filter((d) => !stopped.has(d)).map((department) =>
          departments[department].close(),
        ),
      );
    },
    query: (query, variables, headers) => postGraphQL(url, query, variables, headers),
  };
}

/** POSTs a GraphQL request to `url` as the development desk unless `headers` replace it. */
export async function postGraphQL<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = DEV_DESK,
): Promise<{ status: number; body: { data?: T | null; errors?: PlatformError[] } }> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json",
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as never };
}
