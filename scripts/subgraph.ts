/**
 * `npm run subgraph -- <department> [--port N]`: runs one department's subgraph alone, as a real
 * deployment does (each department runs its own). Port: --port, then PORT, then 4001–4006.
 */
import { DEPARTMENTS, defaultPort, isDepartment } from "../common/departments.ts";
import { option, serveUntilSignal } from "../common/serve.ts";
import { departmentModules } from "../subgraphs/registry.ts";

const department = process.argv[2] ?? "";
if (!isDepartment(department)) {
  console.error(`usage: npm run subgraph -- <${DEPARTMENTS.join("|")}> [--port N]`);
  process.exit(2);
}
const port = Number(option(process.argv, "port") ?? process.env.PORT ?? defaultPort(department));
const host = process.env.HOST ?? "127.0.0.1";
try {
  const app = await departmentModules[department].build();
  const address = await serveUntilSignal(app, port, host);
  app.log.info(`${department} subgraph listening at ${address}/graphql`);
} catch (error) {
  console.error(`${department}: could not start: ${(error as Error).message}`);
  process.exit(1);
}
