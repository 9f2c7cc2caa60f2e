/** The access ledger as a subgraph served inside the gateway (placeholder). */
import type { LocalSubgraph, PlatformServices } from "../platform.ts";

export function ledgerSubgraph(_services: PlatformServices): LocalSubgraph {
  return { resolvers: { Query: { myAccessLog: () => [] } } };
}
