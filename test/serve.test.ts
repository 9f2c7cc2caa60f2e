/**
 * Stopping a server (common/serve.ts), as the gateway and every department do on SIGTERM: the
 * request in flight is answered, and one that arrives meanwhile gets 503 with a GraphQL-style
 * error and a code (and `Connection: close`), not Fastify's bare body.
 */
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { closeGracefully, refuseWhileStopping } from "../common/serve.ts";

describe("a server that stops", () => {
  it("answers the request in flight and refuses a new one with a code", async () => {
    const app = Fastify({ return503OnClosing: false });
    refuseWhileStopping(app);
    let arrived: () => void = () => {};
    const inFlight = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    app.get("/slow", async () => {
      arrived();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { answered: true };
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const first = app.inject("/slow");
    await inFlight;
    const closed = closeGracefully(app);
    const second = await app.inject("/slow");
    expect(second.statusCode).toBe(503);
    expect(second.headers.connection).toBe("close");
    expect(second.headers["retry-after"]).toBe("1");
    expect(second.json().errors[0].extensions).toEqual({ code: "SHUTTING_DOWN" });
    expect((await first).json()).toEqual({ answered: true });
    await closed;
  });
});
