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
  let closing: { signal: NodeJS.Signals; at: number } | null = null;
  const stop = (signal: NodeJS.Signals) => {
    if (closing) {
      // `npm run gateway` in a terminal: Ctrl-C reaches node from the terminal and again from
      // npm, which forwards it — one Ctrl-C, not a second asking to exit at once.
      if (signal === closing.signal && Date.now() - closing.at < 1000) return;
      process.exit(130);
    }
    closing = { signal, at: Date.now() };
    app.log.info({ signal }, "shutting down: finishing requests in flight");
    closeGracefully(app).then(
      () => process.exit(0),
      (error) => {
        app.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return address;
}

/** `--name value` from argv, or undefined. */
export function option(argv: readonly string[], name: string): string | undefined {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? argv[index + 1] : undefined;
}
