/**
 * `npm run gateway`: runs the federated gateway alone, against departments at their configured
 * URLs (`HUKOU_URL` … `CIVIL_URL`, default http://127.0.0.1:4001-4006/graphql).
 */
import { setFlagsFromString } from "node:v8";
import { serveUntilSignal } from "../common/serve.ts";
import { buildGateway } from "../gateway/app.ts";
import { gatewayConfigFromEnv } from "../gateway/config.ts";
import { listeningPort, reportReady, stopWithSupervisor } from "./supervision.ts";

/**
 * Major garbage collections once the old generation has grown by half over what survived the
 * last (V8's own factor goes up to four): in-flight batches of 1,000 persons outlive a scavenge
 * or two, get promoted and would otherwise pile up to ~270 MB before V8 collects them. Measured
 * (`npm run bench`, batch after interactive): peak RSS 271 → 235 MB, gateway CPU +10 %.
 * Set before anything is served; NODE_OPTIONS=--heap-growing-percent=N overrides it.
 */
if (
  !process.execArgv
    .concat(process.env.NODE_OPTIONS ?? "")
    .join(" ")
    .includes("heap-growing")
) {
  setFlagsFromString("--heap-growing-percent=50");
}

stopWithSupervisor();
let app: Awaited<ReturnType<typeof buildGateway>> | null = null;
try {
  const config = gatewayConfigFromEnv();
  app = await buildGateway();
  const address = await serveUntilSignal(app, config.port, config.host);
  app.log.info(`gateway listening at ${address}/graphql`);
  reportReady({ gateway: listeningPort(app) });
} catch (error) {
  console.error(`gateway: could not start: ${(error as Error).message}`);
  // Built but not listening (its port taken): close what it opened — the ledger, whose journal
  // would otherwise stay behind for the next start to move.
  await app?.close().catch(() => {});
  process.exit(1);
}
