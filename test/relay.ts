/**
 * A relay in front of one department's server, to see on the wire what the gateway sends it: it
 * forwards each request unchanged (the gateway's signature covers the body only), notes when it
 * arrived, its body and headers, and lets the answer through after `holdMs`. Set `down`, it
 * plays a department that has died: every connection is cut as it comes, and counted.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from "node:http";
import type { AddressInfo } from "node:net";

export class Relay {
  readonly arrivals: Array<{ at: number; body: string; headers: IncomingHttpHeaders }> = [];
  readonly releases: number[] = [];
  /** Connections the gateway opened to the relay, cut or not. */
  connections = 0;
  private server: Server | null = null;
  private isDown = false;
  url = "";

  /** `target`: the department's URL; may be set after `start` (a platform started behind it). */
  constructor(
    public target = "",
    /** How long each answer is held back; may be changed between requests. */
    public holdMs = 0,
  ) {}

  async start(): Promise<void> {
    const server = createServer((incoming, outgoing) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => {
        const body = Buffer.concat(chunks);
        this.arrivals.push({
          at: performance.now(),
          body: body.toString(),
          headers: incoming.headers,
        });
        const target = new URL(this.target);
        const { host: _, ...headers } = incoming.headers;
        const forwarded = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            path: target.pathname,
            method: "POST",
            headers,
          },
          (answer) => {
            // A department cut off mid-answer: so is the gateway's connection.
            answer.on("error", () => incoming.socket.destroy());
            const parts: Buffer[] = [];
            answer.on("data", (chunk: Buffer) => parts.push(chunk));
            answer.on("end", () => {
              setTimeout(() => {
                this.releases.push(performance.now());
                outgoing.writeHead(answer.statusCode ?? 502, {
                  "content-type": answer.headers["content-type"] ?? "application/json",
                });
                outgoing.end(Buffer.concat(parts));
              }, this.holdMs);
            });
          },
        );
        // The department is gone: so is the connection, as it would be to the department itself.
        forwarded.on("error", () => incoming.socket.destroy());
        forwarded.end(body);
      });
    });
    server.on("connection", (socket) => {
      this.connections++;
      if (this.isDown) socket.destroy();
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  }

  /** From now on the department is dead: open connections are cut, new ones cut as they come. */
  down(): void {
    this.isDown = true;
    this.server?.closeAllConnections();
  }

  /** The department is back (at `target`, which may have changed). */
  up(): void {
    this.isDown = false;
  }

  clear(): void {
    this.arrivals.length = 0;
    this.releases.length = 0;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return; // never started (a platform that failed before it)
    this.server = null;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
