/**
 * `npm run compose`: composes schema/<department>.graphql into schema/supergraph.graphql.
 * `npm run compose -- --check` only reports whether the checked-in file is current.
 */
import { writeFileSync } from "node:fs";
import { checkedInSupergraph, composeSupergraph, SUPERGRAPH_PATH } from "../gateway/compose.ts";

const check = process.argv.includes("--check");
const outcome = composeSupergraph();
if (!outcome.ok) {
  for (const error of outcome.errors) {
    console.error(
      `composition failed [${error.subgraph ?? "several subgraphs"}]: ${error.message}`,
    );
  }
  process.exit(1);
}
for (const hint of outcome.hints) console.error(`hint: ${hint}`);
if (check) {
  let current = "";
  try {
    current = checkedInSupergraph();
  } catch {}
  if (current !== outcome.supergraphSdl) {
    console.error("schema/supergraph.graphql is stale: run `npm run compose`");
    process.exit(1);
  }
  console.log("schema/supergraph.graphql is current");
} else {
  writeFileSync(SUPERGRAPH_PATH, outcome.supergraphSdl);
  console.log(`wrote ${SUPERGRAPH_PATH} (${outcome.supergraphSdl.length} bytes)`);
}
