/** Public Security, traffic management: driver's licences and vehicle registrations. */
import { buildDepartmentSubgraph, type DepartmentServerOptions } from "../../common/subgraph.ts";
import { trafficResolvers } from "./resolvers.ts";
import { TrafficStore } from "./store.ts";
import { trafficTables } from "./tables.ts";

export { trafficWriter } from "./import.ts";
export { trafficTables };

export function buildTrafficSubgraph(options: DepartmentServerOptions = {}) {
  return buildDepartmentSubgraph(
    "traffic",
    trafficTables,
    (database) => trafficResolvers(new TrafficStore(database)),
    options,
  );
}
