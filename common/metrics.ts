/**
 * What the gateway's and the departments' `GET /metrics` share: the process's own figures,
 * the `METRICS_TOKEN` setting and the route that checks it. Each department is run by its own
 * agency, which watches its own service as the platform's operator watches the gateway.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { LRUCache } from "lru-cache";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { ErrorCode } from "./errors.ts";

/** The shortest metrics token: whoever guesses it reads every desk's traffic. */
const MIN_METRICS_TOKEN_LENGTH = 24;

/** `METRICS_TOKEN`, checked: at least 24 characters without spaces, or null when unset. */
export function metricsTokenFromEnv(): string | null {
  const token = process.env.METRICS_TOKEN;
  if (token === undefined || token === "") return null;
  if (token.length < MIN_METRICS_TOKEN_LENGTH || /\s/.test(token)) {
    throw new Error(
      `METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_LENGTH} characters without spaces (e.g. openssl rand -hex 24)`,
    );
  }
  return token;
}

const processRegistries = new Map<string, Registry>();

/**
 * The process's own figures (CPU, memory, event-loop delay, garbage collection) under `prefix`,
 * collected once per process and prefix however many servers it runs (tests start dozens, and
 * `npm start` runs the six departments in one process): each collection installs an event-loop
 * monitor and a GC observer that live as long as the process.
 */
function processMetrics(prefix: string): Registry {
  let registry = processRegistries.get(prefix);
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix });
    processRegistries.set(prefix, registry);
  }
  return registry;
}

/** A server's figures in Prometheus's text format, then its process's under `prefix`. */
export async function exposition(registry: Registry, prefix: string): Promise<string> {
  return `${await registry.metrics()}${await processMetrics(prefix).metrics()}`;
}

/** Wrong tokens an address may send in a window before `/metrics` refuses it for the rest. */
export const WRONG_METRICS_TOKENS = { max: 10, windowMs: 60_000 };

/**
 * `GET /metrics`, Prometheus's text format: with a token, for its bearer only; without, to
 * anybody in development and not at all in production (the figures say who asks how much,
 * which is not for every caller of a production service). An address that sent `wrongTokens.max`
 * wrong tokens within `wrongTokens.windowMs` of its first is refused (429, `Retry-After`) until
 * that window ends, the right token included: a scraper asks every few seconds with the same
 * token, and whoever tries token after token is guessing.
 */
export function serveMetrics(
  app: FastifyInstance,
  options: {
    token: string | null;
    production: boolean;
    text: () => Promise<string>;
    wrongTokens?: { max: number; windowMs: number };
  },
): void {
  const { token, production, text } = options;
  if (token === null && production) return;
  const expected = token === null ? null : createHash("sha256").update(token).digest();
  const limit = options.wrongTokens ?? WRONG_METRICS_TOKENS;
  // Per address: the wrong tokens since its first in the window (kept for the window from that
  // first one), at most 10,000 addresses, the least recent dropped first.
  const wrong = new LRUCache<string, number>({ max: 10_000, ttl: limit.windowMs });
  app.get("/metrics", async (request, reply) => {
    if (expected) {
      if ((wrong.get(request.ip) ?? 0) >= limit.max) {
        const seconds = Math.max(1, Math.ceil(wrong.getRemainingTTL(request.ip) / 1000));
        return reply
          .code(429)
          .header("retry-after", String(seconds))
          .type("application/json; charset=utf-8")
          .send({
            errors: [
              {
                message: `Too many wrong metrics tokens from this address; retry in ${seconds} s`,
                extensions: { code: ErrorCode.RateLimited },
              },
            ],
          });
      }
      // The scheme's name is case-insensitive (RFC 9110, section 11.1).
      const given = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? "")?.[1] ?? "";
      // Compared as digests: equal lengths for timingSafeEqual, and no early exit to time.
      if (!timingSafeEqual(createHash("sha256").update(given).digest(), expected)) {
        wrong.set(request.ip, (wrong.get(request.ip) ?? 0) + 1, { noUpdateTTL: true });
        return reply
          .code(401)
          .header("www-authenticate", 'Bearer realm="mianzheng-metrics"')
          .type("application/json; charset=utf-8")
          .send({
            errors: [
              {
                message: "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>",
                extensions: { code: ErrorCode.Unauthenticated },
              },
            ],
          });
      }
    }
    return reply.type(Registry.PROMETHEUS_CONTENT_TYPE).send(await text());
  });
}

/**
 * A department's own figures, as its server sees them: requests by HTTP status, their duration,
 * and how many entities each `_entities` call asked for (the gateway's coalescing, seen from the
 * department). What a call cost the department is here; what it cost the desk, at the gateway.
 */
export class SubgraphMetrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<"status">;
  private readonly seconds: Histogram;
  private readonly batch: Histogram;

  constructor(department: string) {
    this.registry.setDefaultLabels({ department });
    const registers = [this.registry];
    this.requests = new Counter({
      name: "mianzheng_subgraph_requests_total",
      help: "GraphQL requests this department answered, by HTTP status (401: not signed by the gateway)",
      labelNames: ["status"],
      registers,
    });
    this.seconds = new Histogram({
      name: "mianzheng_subgraph_request_duration_seconds",
      help: "Time from a GraphQL request's arrival to its answer",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.batch = new Histogram({
      name: "mianzheng_subgraph_entities_per_call",
      help: "Entities one _entities call asked for (the gateway gathers concurrent requests' into one)",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
      registers,
    });
  }

  request(status: number, seconds: number): void {
    this.requests.inc({ status: String(status) });
    this.seconds.observe(seconds);
  }

  entities(count: number): void {
    this.batch.observe(count);
  }

  /** The exposition: this department's figures, then its process's. */
  text(): Promise<string> {
    return exposition(this.registry, "mianzheng_subgraph_");
  }
}
