/** Batched reads of the marriage register: one prepared statement per batch of persons. */
import { asc, sql } from "drizzle-orm";
import { unionAll } from "drizzle-orm/sqlite-core";
import { groupRows } from "../../common/loaders.ts";
import { type DepartmentDatabase, inJsonArray } from "../../common/sqlite.ts";
import { marriages } from "./tables.ts";

/** A marriage as seen from one party: `personId` is that party, `spouseId` the other. */
export interface MarriageOfPerson {
  personId: string;
  spouseId: string;
  registeredOn: string;
  dissolvedOn: string | null;
  dissolution: "DIVORCE" | "DEATH" | null;
}

const ids = sql.placeholder("ids");

export class CivilStore {
  private readonly marriagesOfPersons;

  constructor({ db }: DepartmentDatabase) {
    // Each party column has its own index, so the union reads two index ranges per person
    // instead of scanning the table for `party_a IN … OR party_b IN …`.
    const asPartyA = db
      .select({
        personId: marriages.partyA,
        spouseId: marriages.partyB,
        registeredOn: marriages.registeredOn,
        dissolvedOn: marriages.dissolvedOn,
        dissolution: marriages.dissolution,
      })
      .from(marriages)
      .where(inJsonArray(marriages.partyA, ids));
    const asPartyB = db
      .select({
        personId: marriages.partyB,
        spouseId: marriages.partyA,
        registeredOn: marriages.registeredOn,
        dissolvedOn: marriages.dissolvedOn,
        dissolution: marriages.dissolution,
      })
      .from(marriages)
      .where(inJsonArray(marriages.partyB, ids));
    this.marriagesOfPersons = unionAll(asPartyA, asPartyB)
      .orderBy(asc(marriages.registeredOn))
      .prepare();
  }

  /** Every marriage of each person, earliest registration first. */
  marriages(personIds: readonly string[]): MarriageOfPerson[][] {
    const rows = this.marriagesOfPersons.all({ ids: JSON.stringify(personIds) });
    return groupRows(personIds, rows, (row) => row.personId);
  }
}
