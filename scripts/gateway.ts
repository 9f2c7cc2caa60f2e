/**
 * `npm run gateway`: runs the federated gateway alone, against departments at their configured
 * URLs (`HUKOU_URL` … `CIVIL_URL`, default http://127.0.0.1:4001-4006/graphql).
 */
import { serveUntilSignal } from "../common/serve.ts";
import { buildGateway } from "../gateway/app.ts";
import { gatewayConfigFromEnv } from "../gateway/config.ts";
import { reportReady, stopWithSupervisor } from "./supervision.ts";

stopWithSupervisor();
try {
  const config = gatewayConfigFromEnv();
  const app = await buildGateway();
  const address = await serveUntilSignal(app, config.port, config.host);
  app.log.info(`gateway listening at ${address}/graphql`);
  reportReady();
} catch (error) {
  console.error(`gateway: could not start: ${(error as Error).message}`);
  process.exit(1);
}
