/**
 * Every department module, by code: its tables (for the import and the demo population), its
 * record writer, and its subgraph server.
 */
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { FastifyInstance } from "fastify";
import type { Department } from "../common/departments.ts";
import type { RecordsOf } from "../common/records.ts";
import type { Drizzle } from "../common/sqlite.ts";
import type { DepartmentServerOptions } from "../common/subgraph.ts";
import { buildCivilSubgraph, civilTables, civilWriter } from "./civil/index.ts";
import { buildHukouSubgraph, hukouTables, hukouWriter } from "./hukou/index.ts";
import { buildMarketSubgraph, marketTables, marketWriter } from "./market/index.ts";
import { buildSocialSubgraph, socialTables, socialWriter } from "./social/index.ts";
import { buildTaxSubgraph, taxTables, taxWriter } from "./tax/index.ts";
import { buildTrafficSubgraph, trafficTables, trafficWriter } from "./traffic/index.ts";

export interface DepartmentModule<D extends Department> {
  tables: readonly SQLiteTable[];
  /** Upserts one validated record (call inside a transaction for speed). */
  writer: (db: Drizzle) => (record: RecordsOf[D]) => void;
  build: (options?: DepartmentServerOptions) => Promise<FastifyInstance>;
}

export const departmentModules: { [D in Department]: DepartmentModule<D> } = {
  hukou: { tables: hukouTables, writer: hukouWriter, build: buildHukouSubgraph },
  traffic: { tables: trafficTables, writer: trafficWriter, build: buildTrafficSubgraph },
  social: { tables: socialTables, writer: socialWriter, build: buildSocialSubgraph },
  tax: { tables: taxTables, writer: taxWriter, build: buildTaxSubgraph },
  market: { tables: marketTables, writer: marketWriter, build: buildMarketSubgraph },
  civil: { tables: civilTables, writer: civilWriter, build: buildCivilSubgraph },
};
