/** Market Regulation Administration: the register of organisations and their legal representatives. */
import { buildDepartmentSubgraph, type DepartmentServerOptions } from "../../common/subgraph.ts";
import { marketResolvers } from "./resolvers.ts";
import { MarketStore } from "./store.ts";
import { marketTables } from "./tables.ts";

export { marketWriter } from "./import.ts";
export { marketTables };

export function buildMarketSubgraph(options: DepartmentServerOptions = {}) {
  return buildDepartmentSubgraph(
    "market",
    marketTables,
    (database) => marketResolvers(new MarketStore(database)),
    options,
  );
}
