/**
 * How the gateway talks to a department: a keep-alive connection pool (undici), every request
 * signed for that department, a per-department timeout, retries with backoff for these read-only
 * fetches, and a circuit breaker so that a dead department costs microseconds, not the timeout.
 * Failures become a DEPARTMENT_UNAVAILABLE error naming the department — never its URL.
 */
import type {
  GraphQLDataSource,
  GraphQLDataSourceProcessOptions,
} from "@apollo/gateway/dist/datasources/types.js";
import type { GatewayGraphQLResponse } from "@apollo/server-gateway-interface";
import { GraphQLError } from "graphql";
import CircuitBreaker from "opossum";
import { Pool } from "undici";
import { DEPARTMENT_NAMES, type Department } from "../common/departments.ts";
import { ErrorCode } from "../common/errors.ts";
import { SIGNATURE_HEADER, signBody } from "../common/signing.ts";
import type { Principal } from "./principal.ts";

export interface DepartmentClientOptions {
  department: Department;
  url: string;
  secret: string;
  /** Time allowed for one attempt (headers and body), ms. */
  timeoutMs: number;
  /** Further attempts after a failed one (connection refused, timeout, 5xx). */
  retries: number;
  /** Connections kept open to the department. */
  connections: number;
  /** Consecutive-failure share and time the breaker stays open. */
  breakerResetMs: number;
}

/** Why a department's answer was not obtained; logged, never sent to a desk. */
class DepartmentFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface GatewayRequestContext {
  requestId: string;
  /** Who is asking; set by the gateway before execution. */
  principal: Principal;
  /** Departments whose answer was not obtained during this request. */
  unavailable: Set<Department>;
  /** Departments that answered during this request. */
  answered: Set<Department>;
  log: { warn: (object: object, message: string) => void };
}

export function departmentUnavailable(department: Department, path?: readonly (string | number)[]) {
  return new GraphQLError(
    `Department "${department}" (${DEPARTMENT_NAMES[department]}) did not answer; facts it holds are missing from this response`,
    {
      ...(path ? { path } : {}),
      extensions: { code: ErrorCode.DepartmentUnavailable, department },
    },
  );
}

export class DepartmentClient implements GraphQLDataSource<GatewayRequestContext> {
  readonly department: Department;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly breaker: CircuitBreaker<[string, string], GatewayGraphQLResponse>;

  constructor(private readonly options: DepartmentClientOptions) {
    this.department = options.department;
    const url = new URL(options.url);
    this.path = url.pathname + url.search;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    this.breaker = new CircuitBreaker(
      (body: string, requestId: string) => this.attempts(body, requestId),
      {
        // Timeouts are enforced per attempt by the pool; the breaker only counts failures.
        timeout: false,
        errorThresholdPercentage: 50,
        volumeThreshold: 5,
        resetTimeout: options.breakerResetMs,
        rollingCountTimeout: 10_000,
      },
    );
  }

  async process(
    options: GraphQLDataSourceProcessOptions<GatewayRequestContext>,
  ): Promise<GatewayGraphQLResponse> {
    const { query, variables, operationName } = options.request;
    const body = JSON.stringify({ query, variables, operationName });
    const context = options.context as GatewayRequestContext | undefined;
    try {
      const response = await this.breaker.fire(body, context?.requestId ?? "");
      context?.answered.add(this.department);
      return response;
    } catch (error) {
      context?.unavailable.add(this.department);
      context?.log.warn(
        { department: this.department, reason: (error as Error).message },
        "department unavailable",
      );
      const path =
        "pathInIncomingRequest" in options
          ? options.pathInIncomingRequest?.filter((key) => key !== "@")
          : undefined;
      throw departmentUnavailable(this.department, path);
    }
  }

  private async attempts(body: string, requestId: string): Promise<GatewayGraphQLResponse> {
    let delay = 25;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(body, requestId);
      } catch (error) {
        const retryable = !(error instanceof DepartmentFailure) || error.retryable;
        if (!retryable || attempt >= this.options.retries) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay *= 4;
      }
    }
  }

  private async once(body: string, requestId: string): Promise<GatewayGraphQLResponse> {
    const { statusCode, body: responseBody } = await this.pool.request({
      method: "POST",
      path: this.path,
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        "x-request-id": requestId,
        [SIGNATURE_HEADER]: signBody(this.options.secret, body),
      },
      body,
    });
    const text = await responseBody.text();
    if (statusCode >= 500) throw new DepartmentFailure(`HTTP ${statusCode}`, true);
    let response: GatewayGraphQLResponse;
    try {
      response = JSON.parse(text) as GatewayGraphQLResponse;
    } catch {
      throw new DepartmentFailure(`HTTP ${statusCode}, response is not JSON`, false);
    }
    // A 400 with GraphQL errors is the department's answer (e.g. a malformed argument); anything
    // else that is not 200 (401 from a signature check, 404 from a wrong URL) means no answer.
    if (statusCode === 200 || (statusCode === 400 && Array.isArray(response.errors)))
      return response;
    throw new DepartmentFailure(`HTTP ${statusCode}: ${text.slice(0, 200)}`, false);
  }

  /** True while the breaker lets requests through. */
  get available(): boolean {
    return !this.breaker.opened;
  }

  async close(): Promise<void> {
    this.breaker.shutdown();
    await this.pool.close();
  }
}
