/**
 * The tie between `npm start` (scripts/start.ts) and the processes it starts, over the IPC channel
 * it opens to each: a process says when it listens (start.ts needs no polling), and stops, as on
 * SIGTERM, when start.ts is gone (even killed outright), so it never outlives the platform.
 * Started any other way, a process has no channel and none of this applies.
 */

/** Tells start.ts that this process is ready to serve. */
export function reportReady(): void {
  if (process.connected) process.send?.({ ready: true });
}

/** Stops this process gracefully (its SIGTERM handler) when start.ts disconnects. */
export function stopWithSupervisor(): void {
  if (!process.send) return;
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}

/** The message a supervised process sends when it is ready. */
export function isReadyMessage(message: unknown): boolean {
  return typeof message === "object" && message !== null && "ready" in message;
}
