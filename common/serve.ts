/** Listening and graceful shutdown, shared by the gateway and every department's server. */
import type { FastifyInstance } from "fastify";
import { ErrorCode } from "./errors.ts";

/** Servers that have begun to stop (`closeGracefully`). */
const stopping = new WeakSet<FastifyInstance>();

/**
 * Register first (the app built with `return503OnClosing: false`): a request that arrives while
 * the server stops is answered 503 with a GraphQL-style error and a code, and its connection
 * closed — not Fastify's bare `{"error":"Service Unavailable"}`.
 */
export function refuseWhileStopping(app: FastifyInstance): void {
  app.addHook("onRequest", (_request, reply, done) => {
    if (!stopping.has(app)) {
      done();
      return;
    }
    const body = {
      errors: [
        {
          message: "This server is stopping; retry shortly or on another instance",
          extensions: { code: ErrorCode.ShuttingDown },
        },
      ],
    };
    reply
      .code(503)
      .headers({ connection: "close", "retry-after": "1" })
      .type("application/json; charset=utf-8")
      .send(JSON.stringify(body));
  });
}

/**
 * Fastify's close, which waits for every open connection: a client keeping its connection alive
 * between requests would hold it for the keep-alive timeout (72 s: a gateway took 74 s to stop,
 * and `npm start` killed it at 10 s with its journal unclosed). Connections are closed as soon
 * as they are idle — once the request in flight on them is answered.
 */
export function closeGracefully(app: FastifyInstance): Promise<void> {
  stopping.add(app);
  const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
  return app.close().finally(() => clearInterval(sweep));
}

/**
 * Listens, and on SIGINT/SIGTERM stops accepting connections, lets requests in flight finish
 * (`closeGracefully`), then exits. A second signal exits at once.
 */
export async function serveUntilSignal(
  app: FastifyInstance,
  port: number,
  host: string,
): Promise<string> {
  const address = await app.listen({ port, host });
  onStopSignals((signal) => {
    app.log.info({ signal }, "shutting down: finishing requests in flight");
    closeGracefully(app).then(
      () => process.exit(0),
      (error) => {
        app.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
  return address;
}

/**
 * Calls `stop` on the first SIGINT or SIGTERM; a second signal exits at once (130) — but not the
 * same one within a second: `npm run gateway` in a terminal, where Ctrl-C reaches node from the
 * terminal and again from npm, which forwards it, is one Ctrl-C.
 */
export function onStopSignals(stop: (signal: NodeJS.Signals) => void): void {
  let first: { signal: NodeJS.Signals; at: number } | null = null;
  const received = (signal: NodeJS.Signals) => {
    if (first) {
      if (signal === first.signal && Date.now() - first.at < 1000) return;
      process.exit(130);
    }
    first = { signal, at: Date.now() };
    stop(signal);
  };
  process.on("SIGINT", received);
  process.on("SIGTERM", received);
}

/** `--name value` from argv, or undefined. */
export function option(argv: readonly string[], name: string): string | undefined {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? argv[index + 1] : undefined;
}
