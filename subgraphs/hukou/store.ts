/** Batched reads of the household register: one prepared statement per fact, any batch size. */
import { sql } from "drizzle-orm";
import { groupRows, valueByKey } from "../../common/loaders.ts";
import { type DepartmentDatabase, inJsonArray } from "../../common/sqlite.ts";
import { parentage, persons, residencePermits } from "./tables.ts";

export type PersonRow = typeof persons.$inferSelect;
export type ResidencePermitRow = typeof residencePermits.$inferSelect;

const ids = sql.placeholder("ids");

export class HukouStore {
  private readonly personsById;
  private readonly parentsOfChildren;
  private readonly permitsOfPersons;

  constructor({ db }: DepartmentDatabase) {
    this.personsById = db.select().from(persons).where(inJsonArray(persons.id, ids)).prepare();
    this.parentsOfChildren = db
      .select()
      .from(parentage)
      .where(inJsonArray(parentage.childId, ids))
      .prepare();
    this.permitsOfPersons = db
      .select()
      .from(residencePermits)
      .where(inJsonArray(residencePermits.personId, ids))
      .prepare();
  }

  persons(keys: readonly string[]): Array<PersonRow | null> {
    const rows = this.personsById.all({ ids: JSON.stringify(keys) });
    return valueByKey(
      keys,
      rows,
      (row) => row.id,
      (row) => row,
      null,
    );
  }

  parentIds(childIds: readonly string[]): string[][] {
    const rows = this.parentsOfChildren.all({ ids: JSON.stringify(childIds) });
    return groupRows(childIds, rows, (row) => row.childId).map((group) =>
      group.map((row) => row.parentId),
    );
  }

  permits(personIds: readonly string[]): ResidencePermitRow[][] {
    const rows = this.permitsOfPersons.all({ ids: JSON.stringify(personIds) });
    return groupRows(personIds, rows, (row) => row.personId);
  }
}
