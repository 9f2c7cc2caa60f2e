/** Human Resources and Social Security Bureau: monthly social-insurance contributions. */
import { buildDepartmentSubgraph, type DepartmentServerOptions } from "../../common/subgraph.ts";
import { socialResolvers } from "./resolvers.ts";
import { SocialStore } from "./store.ts";
import { socialTables } from "./tables.ts";

export { socialWriter } from "./import.ts";
export { socialTables };

export function buildSocialSubgraph(options: DepartmentServerOptions = {}) {
  return buildDepartmentSubgraph(
    "social",
    socialTables,
    (database) => socialResolvers(new SocialStore(database)),
    options,
  );
}
