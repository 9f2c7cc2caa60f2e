/**
 * `npm run subgraph -- <department>[:port] … [--port N]`: runs a department's subgraph, as a real
 * deployment does (each department runs its own). Port: `<department>:<port>`, then --port, then
 * PORT (these two with one department only), then 4001–4006.
 *
 * Several departments given run in one process, each still its own Fastify server on its own port
 * over its own database, logging under its own name; `npm start` runs all six so, which loads the
 * modules once instead of six times (start-up is mostly loading them).
 */
import { existsSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { DEPARTMENTS, type Department, defaultPort, isDepartment } from "../common/departments.ts";
import { closeGracefully, onStopSignals, option, serveUntilSignal } from "../common/serve.ts";
import { databasePath, dataDir } from "../common/sqlite.ts";
import { departmentModules } from "../subgraphs/registry.ts";
import { listeningPort, reportReady, stopWithSupervisor } from "./supervision.ts";

const usage = `usage: npm run subgraph -- <${DEPARTMENTS.join("|")}>[:port] … [--port N]`;
const portOption = option(process.argv, "port");
const args = process.argv
  .slice(2)
  .filter((arg, i, all) => arg !== "--port" && all[i - 1] !== "--port");
const wanted = args.map((arg) => {
  const [department = "", port] = arg.split(":");
  // `hukou:` is a mistake, not port 0 (a random port nobody would find).
  return {
    department,
    port: port === undefined ? undefined : /^\d+$/.test(port) ? Number(port) : Number.NaN,
  };
});
if (
  wanted.length === 0 ||
  wanted.some(({ department, port }) => !isDepartment(department) || Number.isNaN(port)) ||
  (wanted.length > 1 && (portOption !== undefined || process.env.PORT !== undefined))
) {
  console.error(usage);
  if (wanted.length > 1) console.error("(--port and PORT name the port of one department only)");
  process.exit(2);
}
const host = process.env.HOST ?? "127.0.0.1";
// A department serves its records, never an empty file it made itself: a volume that failed to
// mount would otherwise answer every citizen "unknown", and /ready would say all is well.
const dir = dataDir();
const missing = wanted.filter(
  ({ department }) => !existsSync(databasePath(department as Department, dir)),
);
if (missing.length > 0) {
  for (const { department } of missing) {
    console.error(
      `${department}: could not start: no database at ${databasePath(department as Department, dir)}; seed a demo population (npm run seed) or import the department's export (npm run import) first`,
    );
  }
  process.exit(2);
}
stopWithSupervisor();

if (wanted.length === 1) {
  const { department, port } = wanted[0] as { department: Department; port?: number };
  try {
    const app = await departmentModules[department].build();
    const address = await serveUntilSignal(
      app,
      port ?? Number(portOption ?? process.env.PORT ?? defaultPort(department)),
      host,
    );
    app.log.info(`${department} subgraph listening at ${address}/graphql`);
    reportReady({ [department]: listeningPort(app) });
  } catch (error) {
    console.error(`${department}: could not start: ${(error as Error).message}`);
    process.exit(1);
  }
} else {
  const apps = new Map<Department, FastifyInstance>();
  let stopping = false;
  // One signal stops every server in the process, each finishing its requests in flight.
  const stop = async (exitCode: number, signal?: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    for (const app of apps.values()) {
      if (signal) app.log.info({ signal }, "shutting down: finishing requests in flight");
    }
    const closed = await Promise.allSettled([...apps.values()].map(closeGracefully));
    process.exit(closed.some((result) => result.status === "rejected") ? 1 : exitCode);
  };
  onStopSignals((signal) => void stop(0, signal));
  for (const { department, port } of wanted as { department: Department; port?: number }[]) {
    try {
      const app = await departmentModules[department].build({
        logger: { level: process.env.LOG_LEVEL ?? "info", name: department },
      });
      apps.set(department, app);
      const address = await app.listen({ port: port ?? defaultPort(department), host });
      app.log.info(`${department} subgraph listening at ${address}/graphql`);
    } catch (error) {
      console.error(`${department}: could not start: ${(error as Error).message}`);
      await stop(1);
    }
  }
  reportReady(
    Object.fromEntries([...apps].map(([department, app]) => [department, listeningPort(app)])),
  );
}
