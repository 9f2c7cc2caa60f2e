/** Civil Affairs Bureau: the marriage register. */
import { buildDepartmentSubgraph, type DepartmentServerOptions } from "../../common/subgraph.ts";
import { civilResolvers } from "./resolvers.ts";
import { CivilStore } from "./store.ts";
import { civilTables } from "./tables.ts";

export { civilWriter } from "./import.ts";
export { civilTables };

export function buildCivilSubgraph(options: DepartmentServerOptions = {}) {
  return buildDepartmentSubgraph(
    "civil",
    civilTables,
    (database) => civilResolvers(new CivilStore(database)),
    options,
  );
}
