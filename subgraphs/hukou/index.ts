/** Public Security Bureau, household registration: persons, parentage, residence permits. */
import { buildDepartmentSubgraph, type DepartmentServerOptions } from "../../common/subgraph.ts";
import { hukouResolvers } from "./resolvers.ts";
import { HukouStore } from "./store.ts";
import { hukouTables } from "./tables.ts";

export { hukouWriter } from "./import.ts";
export { hukouTables };

export function buildHukouSubgraph(options: DepartmentServerOptions = {}) {
  return buildDepartmentSubgraph(
    "hukou",
    hukouTables,
    (database) => hukouResolvers(new HukouStore(database)),
    options,
  );
}
