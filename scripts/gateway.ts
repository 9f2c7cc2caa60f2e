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
 * V8 settings for a gateway that serves for days, set before anything is served. The same flag on
 * node's command line wins (`node --heap-growing-percent=80 dist/gateway.mjs`); NODE_OPTIONS does
 * not accept these flags.
 *
 * - `--heap-growing-percent=50`: major garbage collections once the old generation has grown by
 *   half over what survived the last (V8's own factor goes up to four). In-flight batches of
 *   1,000 persons outlive a scavenge or two, get promoted and would otherwise pile up to ~270 MB
 *   before V8 collects them. Measured (`npm run bench`, batch after interactive): peak RSS 271 →
 *   235 MB, gateway CPU +10 %.
 * - `--no-allocation-site-pretenuring`: V8 allocates an object straight in the old generation
 *   once most objects from the same place in the code survived a scavenge, and a request's
 *   objects live until its accesses are flushed to the audit journal, about a millisecond. A
 *   third of the gateways the benchmark loaded in bursts made a major collection every half
 *   second (heap 40–60 MB, growing by half between them) and spent 40 % more CPU per interactive
 *   request (0.19–0.23 against 0.14 ms) for as long as they ran; none did with this flag. That
 *   the request path was tenured is inferred from those collections, not traced
 *   (docs/performance.md, "A gateway that tenured its requests").
 */
const V8_SETTINGS: ReadonlyArray<readonly [name: string, flag: string]> = [
  ["heap-growing-percent", "--heap-growing-percent=50"],
  ["allocation-site-pretenuring", "--no-allocation-site-pretenuring"],
];
// V8 reads `--heap_growing_percent` as `--heap-growing-percent`.
const commandLine = process.execArgv.join(" ").replaceAll("_", "-");
for (const [name, flag] of V8_SETTINGS) {
  if (!commandLine.includes(name)) setFlagsFromString(flag);
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
