/**
 * The security pipeline of a GraphQL request, in the order the gateway applies it:
 *
 * 1. authenticate (onRequest, before the body is read): desk key or token and purpose → principal;
 *    401 / 403 with a GraphQL-style body and no data;
 * 2. rate limit per desk (429 with Retry-After);
 * 3. persisted operations: resolve a hash to its registered document; refuse unregistered
 *    documents for desks restricted to them;
 * 4. operation limits: tokens, depth, aliases, then list sizes and the estimated cost once
 *    variables are coerced;
 * 5. authorize: rewrite the operation without the fields the purpose may not see;
 * 6. after execution: withheld fields become `null` + FORBIDDEN, subjects are collected, ids and
 *    names masked, and the accesses appended to the audit ledger — the response waits for that.
 *
 * `SECURITY=off` (refused in production) skips all of it: every request runs as the open
 * principal, for development and for measuring what security costs.
 */
import rateLimit from "@fastify/rate-limit";
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
  RouteShorthandOptions,
} from "fastify";
import type { DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode } from "graphql";
import { ErrorCode } from "../../common/errors.ts";
import { POLICIES } from "../../policies/registry.ts";
import type { GatewayConfig } from "../config.ts";
import { productionProblem } from "../config.ts";
import type { GatewayRequestContext } from "../department-client.ts";
import { UNSHAPED_DATA } from "../execution/federation.ts";
import { JSON_MEDIA, responseMediaType, sendRequestError } from "../http.ts";
import { type AccessLedger, AuditLedger, LedgerUnavailable, NO_LEDGER } from "../ledger/ledger.ts";
import { OPEN_PRINCIPAL, type Principal } from "../principal.ts";
import type { FieldScopes } from "../supergraph.ts";
import { type PathedError, touchedSubjects } from "./access-record.ts";
import { AuthenticationFailure, Authenticator } from "./authentication.ts";
import { type AuthorizedOperation, Authorizer } from "./authorization.ts";
import { type CostDirectives, CostEstimator } from "./cost.ts";
import { type Desk, DeskRegistry, unknownGrants } from "./desks.ts";
import { DocumentLimits, listSizeErrors } from "./limits.ts";
import { applyMasks } from "./masking.ts";
import { PersistedCode, PersistedOperations } from "./persisted.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Who is asking, set by authentication before the body is read. */
    principal: Principal;
  }
}

/** The response cannot be sent because its accesses could not be recorded. */
export const AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE";

export interface CompletedResult {
  data: Record<string, unknown> | null | undefined;
  errors: ReadonlyArray<PathedError & { message: string }>;
  /**
   * Resolves once the accesses are durable in the ledger (rejects with LedgerUnavailable): the
   * response may be serialised meanwhile, but must not be sent before.
   */
  recorded: Promise<void>;
}

const NOTHING_TO_RECORD = Promise.resolve();

export interface RequestRefusal {
  status: number;
  errors: Array<{ message: string; extensions: Record<string, unknown> }>;
}

export class SecurityPipeline {
  private authorizer: Authorizer | null = null;
  private limits: DocumentLimits | null = null;
  private cost: CostEstimator | null = null;

  private constructor(
    private readonly config: GatewayConfig,
    readonly enabled: boolean,
    private readonly registry: DeskRegistry | null,
    private readonly authenticator: Authenticator | null,
    readonly ledger: AccessLedger,
    readonly persisted: PersistedOperations,
  ) {}

  /**
   * Loads the desk registry and opens the audit ledger; refuses a configuration production must
   * not run (demo desks, security off, no desk registry).
   */
  static async create(
    config: GatewayConfig,
    log: FastifyBaseLogger,
    scopes: FieldScopes,
  ): Promise<SecurityPipeline> {
    const problem = productionProblem(config);
    if (problem) throw new Error(`refusing to start in production: ${problem}`);
    const { security } = config;
    const persisted = security.operationsFile
      ? PersistedOperations.fromFile(security.operationsFile)
      : PersistedOperations.empty();
    if (!security.enabled) {
      log.warn("SECURITY=off: no authentication, authorization, masking, limits or audit");
      return new SecurityPipeline(config, false, null, null, NO_LEDGER, persisted);
    }
    // A token is told apart by its issuer: with one issuer for both, every desk JWT would be
    // checked as a citizen's and refused.
    if (security.deskJwt && security.deskJwt.issuer === security.citizen.issuer) {
      throw new Error(
        `refusing to start: DESK_JWT_ISSUER and CITIZEN_TOKEN_ISSUER are both "${security.citizen.issuer}"; desks' and citizens' tokens need issuers of their own`,
      );
    }
    const registry = DeskRegistry.fromFile(security.desksFile);
    const demo = registry.demoDesks;
    if (config.production && demo.length > 0) {
      throw new Error(
        `refusing to start in production: demo desk${demo.length > 1 ? "s" : ""} ${demo
          .map((desk) => desk.id)
          .join(
            ", ",
          )} (published development keys) registered in ${security.desksFile}; register the real desks in DESKS_FILE`,
      );
    }
    const everything = registry.desks.flatMap((desk) =>
      [...desk.purposes.values()]
        .filter((purpose) => purpose.scopes.includes("*"))
        .map((purpose) => `${desk.id}/${purpose.code}`),
    );
    if (config.production && everything.length > 0) {
      // "*" grants every scope, including those a later department adds: a development shortcut.
      throw new Error(
        `refusing to start in production: ${everything.join(", ")} grant${everything.length > 1 ? "" : "s"} every scope ("*") in ${security.desksFile}; list the scopes the purpose needs`,
      );
    }
    if (config.production && !security.citizen.jwksUrl) {
      log.warn("CITIZEN_JWKS_URL is not set: citizens cannot read their access log");
    }
    // Before the ledger opens: a refusal leaves no writer thread and no journal behind.
    checkGrants(config, registry, scopes, log);
    const keyless = registry.desks.filter((desk) => desk.keyHashes.length === 0);
    if (keyless.length > 0 && !security.deskJwt) {
      log.warn(
        { desks: keyless.map((desk) => desk.id) },
        "desks without keys, and no DESK_JWKS_URL for their tokens: they cannot authenticate",
      );
    }
    const restricted = registry.desks.filter((desk) => desk.persistedOperationsOnly);
    if (restricted.length > 0 && persisted.size === 0) {
      log.warn(
        { desks: restricted.map((desk) => desk.id) },
        "desks restricted to registered operations, but none are registered (PERSISTED_OPERATIONS_FILE): they are refused everything",
      );
    }
    const authenticator = new Authenticator(registry, security);
    const ledger = await AuditLedger.open(config.dataDir, security.auditSync, {
      busyTimeoutMs: security.auditBusyTimeoutMs,
    });
    const { recovered } = ledger;
    if (recovered.migrated) {
      log.info(
        recovered.migrated,
        "audit ledger: migrated audit.db from format 1 to 2 (each context stored once; every hash unchanged)",
      );
    }
    const logRecovered = ({ entries, problems }: { entries: number; problems: string[] }) => {
      if (entries > 0) {
        log.warn(
          { entries },
          "audit ledger: moved the accesses a stopped gateway had acknowledged in its journal into audit.db",
        );
      }
      for (const problem of problems) {
        log.error({ problem }, "audit ledger: an abandoned journal stopped before its end");
      }
    };
    logRecovered(recovered);
    ledger.onRecovered = logRecovered;
    return new SecurityPipeline(config, true, registry, authenticator, ledger, persisted);
  }

  /** Called once the supergraph's API schema is loaded. */
  attachSchema(schema: GraphQLSchema, scopes: FieldScopes, cost: CostDirectives): void {
    const { limits } = this.config.security;
    this.authorizer = new Authorizer(schema, scopes);
    this.limits = new DocumentLimits(schema, limits);
    this.cost = new CostEstimator(schema, cost, limits.costListSize);
  }

  /** Counts an address's failed authentications (set by `register`). */
  private countFailure: ReturnType<FastifyInstance["createRateLimit"]> | null = null;
  /**
   * Addresses refused for failing to authenticate too often, until when (ms since the epoch):
   * checked synchronously, so that a request that authenticates pays no promise for it.
   */
  private readonly refusedUntil = new Map<string, number>();

  /** Registers the rate limiter; call before the GraphQL route is added. */
  async register(app: FastifyInstance): Promise<void> {
    app.decorateRequest("principal", null as unknown as Principal);
    if (!this.enabled) return;
    const defaults = this.config.security.rateLimit;
    const limitOf = (request: FastifyRequest) =>
      this.deskOf(request.principal)?.rateLimit ?? defaults;
    await app.register(rateLimit, {
      global: false,
      hook: "onRequest",
      keyGenerator: (request) => {
        const { principal } = request;
        if (principal?.deskId) return `desk:${principal.deskId}`;
        if (principal?.citizenId) return `citizen:${principal.citizenId}`;
        return `ip:${request.ip}`;
      },
      max: async (request) => limitOf(request).max,
      timeWindow: async (request) => limitOf(request).windowMs,
      errorResponseBuilder: (request, context) => {
        const who = request.principal?.deskId ? `desk ${request.principal.deskId}` : "this client";
        return Object.assign(
          new Error(
            `Rate limit of ${context.max} requests per ${Math.round(limitOf(request).windowMs / 1000)} s exceeded for ${who}; retry in ${context.after}`,
          ),
          { statusCode: context.statusCode, code: ErrorCode.RateLimited },
        );
      },
    });
    const failures = this.config.security.failedAuthentications;
    this.countFailure = app.createRateLimit({
      max: failures.max,
      timeWindow: failures.windowMs,
      keyGenerator: (request) => `failed-authentication:${request.ip}`,
    });
  }

  /** Seconds until an address refused for failed authentications may try again; 0: it may. */
  private refusedFor(ip: string): number {
    const until = this.refusedUntil.get(ip);
    if (until === undefined) return 0;
    const left = until - Date.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.refusedUntil.delete(ip);
    return 0;
  }

  /** Counts a failed authentication; past the limit the address is refused for the window. */
  private async failedFrom(request: FastifyRequest): Promise<void> {
    if (!this.countFailure) return;
    const limit = await this.countFailure(request);
    // The max-th failure closes the address for the rest of the window.
    if (limit.isAllowed || limit.remaining > 0) return;
    if (this.refusedUntil.size >= 10_000) {
      const now = Date.now();
      for (const [ip, until] of this.refusedUntil) if (until <= now) this.refusedUntil.delete(ip);
    }
    this.refusedUntil.set(request.ip, Date.now() + limit.ttl);
    request.log.warn(
      { ip: request.ip },
      "refusing an address that failed to authenticate too often",
    );
  }

  /** Route options for `/graphql`: authentication first, then the per-desk rate limit. */
  routeOptions(): Pick<RouteShorthandOptions, "onRequest" | "config"> {
    const authenticate: onRequestAsyncHookHandler = async (request, reply) => {
      if (!this.authenticator) {
        request.principal = OPEN_PRINCIPAL;
        return;
      }
      const refused = this.refusedFor(request.ip);
      if (refused > 0) {
        reply.header("retry-after", String(refused));
        return sendRequestError(
          reply,
          responseMediaType(request.headers.accept) ?? JSON_MEDIA,
          429,
          [
            {
              message: `Too many failed authentications from this address; retry in ${refused} s`,
              extensions: { code: ErrorCode.RateLimited },
            },
          ],
        );
      }
      try {
        request.principal = await this.authenticator.authenticate(request.headers);
      } catch (error) {
        if (!(error instanceof AuthenticationFailure)) throw error;
        request.log.warn(
          { status: error.status, reason: error.message, ip: request.ip },
          "refused an unauthenticated or unauthorised request",
        );
        if (error.status === 401) {
          await this.failedFrom(request);
          reply.header("www-authenticate", 'Bearer realm="mianzheng"');
        }
        return sendRequestError(
          reply,
          responseMediaType(request.headers.accept) ?? JSON_MEDIA,
          error.status,
          [{ message: error.message, extensions: { code: error.code } }],
        );
      }
    };
    return {
      onRequest: [authenticate],
      config: this.enabled ? { rateLimit: {} } : {},
    };
  }

  private deskOf(principal: Principal | undefined): Desk | undefined {
    return principal?.deskId ? this.registry?.desk(principal.deskId) : undefined;
  }

  /** Token, depth and alias limits of a document (checked before it is even validated). */
  documentErrors(query: string): readonly GraphQLError[] {
    return this.enabled && this.limits ? this.limits.check(query) : [];
  }

  /** A desk restricted to registered operations sent another document. */
  unregisteredOperation(principal: Principal, hash: string): RequestRefusal | null {
    if (!this.enabled || !this.deskOf(principal)?.persistedOperationsOnly) return null;
    if (this.persisted.isRegistered(hash)) return null;
    return {
      status: 403,
      errors: [
        {
          message: `Desk ${principal.deskId} may run registered operations only; this document (sha256 ${hash}) is not registered`,
          extensions: { code: PersistedCode.NotInList },
        },
      ],
    };
  }

  /** The operation as the principal may run it (or errors when it cannot be planned). */
  authorize(
    document: DocumentNode,
    query: string,
    hash: string,
    operation: OperationDefinitionNode,
    principal: Principal,
  ): AuthorizedOperation | readonly GraphQLError[] {
    if (!this.enabled || !this.authorizer) {
      return {
        document,
        operation,
        query,
        hash,
        removed: [],
        masked: [],
        sites: [],
        listArguments: [],
        denied: [],
      };
    }
    return this.authorizer.authorize(document, query, hash, operation, principal);
  }

  /**
   * List arguments over the limit, then an estimated cost over the budget (the desk's, else the
   * gateway's), once the variables are coerced. The cost is the planned operation's: a field
   * withheld is not fetched.
   */
  limitErrors(
    plan: AuthorizedOperation,
    variables: Record<string, unknown>,
    principal: Principal,
  ): { errors: GraphQLError[]; cost: number | null } {
    if (!this.enabled) return { errors: [], cost: null };
    const { limits } = this.config.security;
    const errors = listSizeErrors(plan.listArguments, variables, limits.maxListSize);
    if (errors.length > 0 || !this.cost) return { errors, cost: null };
    const max = this.deskOf(principal)?.maxCost ?? limits.maxCost;
    const cost = this.cost.estimate(plan.document, plan.operation, variables);
    return { errors: this.cost.errors(cost, max), cost };
  }

  /**
   * Finishes an executed operation: withheld fields answered null with FORBIDDEN, identity numbers
   * and names masked, and the accesses handed to the ledger (`recorded` says when they are durable).
   */
  complete(
    result: {
      data?: Record<string, unknown> | null;
      errors?: ReadonlyArray<PathedError & { message: string }>;
    },
    plan: AuthorizedOperation,
    principal: Principal,
    variables: Record<string, unknown>,
    context: GatewayRequestContext,
    operation: { name: string | null; hash: string },
  ): CompletedResult {
    const errors = result.errors ?? [];
    if (!this.enabled || !this.authorizer) {
      return { data: result.data, errors, recorded: NOTHING_TO_RECORD };
    }
    const data = result.data;
    const withheld = plan.removed.length > 0 ? this.authorizer.withhold(data, plan, principal) : [];
    const all = withheld.length > 0 ? [...errors, ...withheld] : errors;
    const unshaped = (result as { [UNSHAPED_DATA]?: unknown })[UNSHAPED_DATA];
    // A field withheld where no object could hold it (its parents null: an error without a
    // path) took nothing from anybody's answer: not an error the subjects' outcomes count.
    const outcomeErrors =
      withheld.length > 0 ? [...errors, ...withheld.filter((error) => error.path)] : errors;
    const subjects = touchedSubjects(data, plan, variables, outcomeErrors, unshaped);
    applyMasks(data, plan.masked);
    const recorded =
      subjects.length === 0
        ? NOTHING_TO_RECORD
        : this.ledger.append({
            principal,
            requestId: context.requestId,
            operationName: operation.name,
            operationHash: operation.hash,
            departments: context.answered,
            subjects,
          });
    return { data, errors: all, recorded };
  }

  async close(): Promise<void> {
    await this.ledger.close();
  }
}

/** Answers a request whose accesses could not be recorded: nothing is disclosed. */
export function sendAuditUnavailable(
  reply: FastifyReply,
  mediaType: string,
  error: LedgerUnavailable,
  log: FastifyBaseLogger,
): FastifyReply {
  log.error({ err: error }, "audit ledger unavailable: response withheld");
  return sendRequestError(reply, mediaType, 503, [
    {
      message:
        "The access could not be recorded in the audit ledger, so nothing was disclosed; retry later",
      extensions: { code: AUDIT_UNAVAILABLE },
    },
  ]);
}

export { LedgerUnavailable };

/**
 * A scope no field of the supergraph and no policy requires grants nothing: almost always a
 * misspelling (`hukou:regoin`) that leaves a desk without a fact its purpose was registered for,
 * found only when a citizen's application fails. Citizens' scopes (`citizen:…`) grant a desk
 * nothing either. Refused in production, warned otherwise.
 */
function checkGrants(
  config: GatewayConfig,
  registry: DeskRegistry,
  scopes: FieldScopes,
  log: FastifyBaseLogger,
): void {
  const known = new Set(POLICIES.map((policy) => policy.scope));
  for (const sets of scopes.values()) {
    for (const set of sets) {
      for (const scope of set) if (!scope.startsWith("citizen:")) known.add(scope);
    }
  }
  const unknown = unknownGrants(registry, known);
  if (unknown.length === 0) return;
  const many = unknown.length > 1;
  const message = `${unknown.join("; ")} in ${config.security.desksFile}: no field or policy requires ${many ? "these scopes" : "this scope"} of a desk, so ${many ? "they grant" : "it grants"} nothing`;
  if (config.production) throw new Error(`refusing to start in production: ${message}`);
  log.warn(message);
}
