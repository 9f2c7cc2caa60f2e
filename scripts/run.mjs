// @ts-check
/**
 * `node scripts/run.mjs <start|gateway|subgraph> [args…]` (what `npm start`, `npm run gateway` and
 * `npm run subgraph` run): runs the bundle `dist/<name>.mjs` of `scripts/<name>.ts`, rebuilding
 * `dist/` first when a source changed since (see scripts/build.mjs). One process: the check
 * costs a few milliseconds, a second Node process would cost tens.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, DIST, isStale } from "./build.mjs";

const BUNDLES = ["start", "gateway", "subgraph"];
const name = process.argv[2] ?? "";
if (!BUNDLES.includes(name)) {
  console.error(`usage: node scripts/run.mjs <${BUNDLES.join("|")}> [args…]`);
  process.exit(2);
}
try {
  if (isStale()) await build();
} catch (error) {
  console.error(`[build] failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
const bundle = join(DIST, `${name}.mjs`);
// The bundle reads its arguments as if run directly: `node dist/<name>.mjs args…`.
process.argv.splice(1, 2, bundle);
await import(pathToFileURL(bundle).href);
