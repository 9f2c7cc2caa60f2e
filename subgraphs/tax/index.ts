/** Taxation Bureau: individual income tax of persons, value-added tax of organisations. */
import { buildDepartmentSubgraph, type DepartmentServerOptions } from "../../common/subgraph.ts";
import { taxResolvers } from "./resolvers.ts";
import { TaxStore } from "./store.ts";
import { taxTables } from "./tables.ts";

export { taxWriter } from "./import.ts";
export { taxTables };

export function buildTaxSubgraph(options: DepartmentServerOptions = {}) {
  return buildDepartmentSubgraph(
    "tax",
    taxTables,
    (database) => taxResolvers(new TaxStore(database)),
    options,
  );
}
