/**
 * Subgraphs the platform itself serves, inside the gateway process: the access ledger (a
 * citizen's `myAccessLog`) and verification (`policies`, `verify`). They compose into the
 * supergraph like any department's, from `schema/<name>.graphql`, but are answered in-process.
 */
import type { GraphQLResolverMap } from "@apollo/subgraph/dist/schema-helper/resolverMap.js";
import type { FastifyBaseLogger, FastifyInstance, RouteShorthandOptions } from "fastify";
import type { ExecutionResult } from "graphql";
import type { PlatformSubgraphName } from "../common/departments.ts";
import type { GatewayConfig } from "./config.ts";
import type { GatewayRequestContext } from "./department-client.ts";
import type { AccessLedger } from "./ledger/ledger.ts";
import { ledgerSubgraph } from "./ledger/subgraph.ts";
import type { VerdictObserver } from "./metrics.ts";
import { verificationSubgraph } from "./verification/subgraph.ts";

export interface PlatformServices {
  /**
   * Runs an operation over the federated graph for `context.principal`, in-process (no HTTP,
   * no per-field authorization: the caller has already authorised the whole operation).
   */
  execute(
    query: string,
    variables: Record<string, unknown>,
    context: GatewayRequestContext,
  ): Promise<ExecutionResult>;
  config: GatewayConfig;
  dataDir: string;
  log: FastifyBaseLogger;
  /**
   * The audit ledger: platform code that discloses facts outside the per-request pipeline (e.g.
   * verification over `execute`) appends its accesses here and waits before answering.
   * With `SECURITY=off` it records nothing.
   */
  ledger: AccessLedger;
  /**
   * Route options for an HTTP route desks call besides /graphql (e.g. POST /jobs): spread them
   * into the route (`app.post("/jobs", services.routeOptions(), handler)`) and the request is
   * authenticated as on /graphql (`request.principal`; 401/403 otherwise) and counted against
   * the desk's rate limit. With `SECURITY=off` every request is the open principal.
   */
  routeOptions(): Pick<RouteShorthandOptions, "onRequest" | "config">;
  /** Told of each verdict reached (the gateway's metrics). */
  verdicts: VerdictObserver;
}

export interface LocalSubgraph {
  resolvers: GraphQLResolverMap<GatewayRequestContext>;
  /** Adds HTTP routes next to /graphql (e.g. /.well-known/jwks.json, /jobs). */
  register?(app: FastifyInstance): Promise<void> | void;
  close?(): Promise<void> | void;
}

export const platformSubgraphs: Record<
  PlatformSubgraphName,
  (services: PlatformServices) => LocalSubgraph
> = {
  ledger: ledgerSubgraph,
  verification: verificationSubgraph,
};
