/**
 * The whole platform for end-to-end tests: six department subgraphs and the gateway, each on its
 * own port 0 listener, talking real (signed) HTTP to one another over loopback.
 */
import type { FastifyInstance } from "fastify";
import { DEPARTMENTS, type Department } from "../common/departments.ts";
import { buildGateway, type GatewayOptions } from "../gateway/app.ts";
import type { DepartmentEndpoint } from "../gateway/config.ts";
import { departmentModules } from "../subgraphs/registry.ts";
import type { Relay } from "./relay.ts";

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
    /** Departments the gateway reaches through a relay (started here, closed with the platform). */
    relays?: Partial<Record<Department, Relay>>;
  } = {},
): Promise<Platform> {
  const departments = {} as Record<Department, FastifyInstance>;
  const endpoints = {} as Record<Department, DepartmentEndpoint>;
  const { standIns, relays = {}, ...gatewayOptions } = options;
  let built: FastifyInstance | null = null;
  let url: string;
  try {
    for (const department of DEPARTMENTS) {
      const app = await departmentModules[department].build({ dataDir, logger: false });
      departments[department] = app;
      const address = await app.listen({ port: 0, host: "127.0.0.1" });
      endpoints[department] = { url: `${address}/graphql`, timeoutMs: 2000 };
      const relay = relays[department];
      if (relay) {
        relay.target = `${address}/graphql`;
        await relay.start();
        endpoints[department] = { url: relay.url, timeoutMs: 2000 };
      }
    }
    built = await buildGateway({
      ...gatewayOptions,
      logger: false,
      config: {
        breakerResetMs: 500,
        dataDir,
        ...options.config,
        departments: { ...endpoints, ...standIns },
      },
    });
    url = `${await built.listen({ port: 0, host: "127.0.0.1" })}/graphql`;
  } catch (error) {
    // A platform that failed to start leaves nothing listening behind it (nor a ledger open).
    await Promise.allSettled([
      built?.close(),
      ...Object.values(departments).map((department) => department.close()),
      ...Object.values(relays).map((relay) => relay.close()),
    ]);
    throw error;
  }
  const gateway: FastifyInstance = built;
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
      // Every department is closed even when the gateway's close fails, which is then reported.
      try {
        await gateway.close();
      } finally {
        await Promise.all([
          ...DEPARTMENTS.filter((d) => !stopped.has(d)).map((department) =>
            departments[department].close(),
          ),
          ...Object.values(relays).map((relay) => relay.close()),
        ]);
      }
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

/**
 * An `afterAll`: closes the platform if it started (a `beforeAll` that failed leaves it
 * undefined), then runs the rest (removing data directories) whether or not closing failed.
 */
export async function tearDown(
  platform: Platform | undefined,
  ...then: Array<() => unknown>
): Promise<void> {
  try {
    await platform?.close();
  } finally {
    for (const step of then) step();
  }
}
