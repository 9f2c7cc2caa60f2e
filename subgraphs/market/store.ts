/** Batched reads of the market register: one prepared statement per fact, any batch size. */
import { asc, sql } from "drizzle-orm";
import { groupRows, valueByKey } from "../../common/loaders.ts";
import { type DepartmentDatabase, inJsonArray } from "../../common/sqlite.ts";
import { organizations } from "./tables.ts";

export type OrganizationRow = typeof organizations.$inferSelect;
export type OrganizationStatus = OrganizationRow["status"];

const keys = sql.placeholder("keys");
const status = sql.placeholder("status");

export class MarketStore {
  private readonly organizationsByUscc;
  private readonly organizationsOfRepresentatives;

  constructor({ db }: DepartmentDatabase) {
    this.organizationsByUscc = db
      .select()
      .from(organizations)
      .where(inJsonArray(organizations.uscc, keys))
      .prepare();
    // A null status binds as "any status", so one statement serves the filtered and unfiltered fact.
    this.organizationsOfRepresentatives = db
      .select()
      .from(organizations)
      .where(
        sql`${inJsonArray(organizations.legalRepresentativeId, keys)} AND (${status} IS NULL OR ${organizations.status} = ${status})`,
      )
      .orderBy(asc(organizations.establishedOn), asc(organizations.uscc))
      .prepare();
  }

  organizations(usccs: readonly string[]): Array<OrganizationRow | null> {
    const rows = this.organizationsByUscc.all({ keys: JSON.stringify(usccs) });
    return valueByKey(
      usccs,
      rows,
      (row) => row.uscc,
      (row) => row,
      null,
    );
  }

  /** Organisations represented by each person, oldest establishment first. */
  organizationsRepresentedBy(
    personIds: readonly string[],
    filter: OrganizationStatus | null,
  ): OrganizationRow[][] {
    const rows = this.organizationsOfRepresentatives.all({
      keys: JSON.stringify(personIds),
      status: filter,
    });
    return groupRows(personIds, rows, (row) => row.legalRepresentativeId);
  }
}
