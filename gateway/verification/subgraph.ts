/** Verification policies as a subgraph served inside the gateway (placeholder). */
import type { LocalSubgraph, PlatformServices } from "../platform.ts";

export function verificationSubgraph(_services: PlatformServices): LocalSubgraph {
  return { resolvers: { Query: { policies: () => [] } } };
}
