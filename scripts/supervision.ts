/**
 * The tie between `npm start` (scripts/start.ts) and the processes it starts, over the IPC channel
 * it opens to each: a process says when it listens (start.ts needs no polling), and stops, as on
 * SIGTERM, when start.ts is gone (even killed outright), so it never outlives the platform.
 * Started any other way, a process has no channel and none of this applies.
 */

/**
 * Tells start.ts that this process is ready to serve, and on which ports (by department, or
 * `gateway`): a server asked for port 0 listens where the system put it.
 */
export function reportReady(ports: Record<string, number>): void {
  if (process.connected) process.send?.({ ready: true, ports });
}

/** Stops this process gracefully (its SIGTERM handler) when start.ts disconnects. */
export function stopWithSupervisor(): void {
  if (!process.send) return;
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}

/** The ports of the message a supervised process sends when it is ready; null for another. */
export function readyPorts(message: unknown): Record<string, number> | null {
  if (typeof message !== "object" || message === null || !("ready" in message)) return null;
  const { ports } = message as { ports?: unknown };
  return typeof ports === "object" && ports !== null ? (ports as Record<string, number>) : {};
}

/** The port a Fastify server listens on. */
export function listeningPort(app: { server: { address(): unknown } }): number {
  return (app.server.address() as { port: number }).port;
}
