/**
 * Batched reads of the household register: one prepared statement per fact, any batch size. Each
 * statement walks the batch (`keyBatch`) and answers with rows of plain values tagged with the
 * position of the key they belong to, which are shaped here without an intermediate map.
 */
import { asc, eq, sql } from "drizzle-orm";
import { groupByIndex } from "../../common/loaders.ts";
import {
  batchIndex,
  batchKey,
  type DepartmentDatabase,
  jsonPerKey,
  keyBatch,
  perKeyValues,
} from "../../common/sqlite.ts";
import { parentage, persons, residencePermits } from "./tables.ts";

/**
 * What most questions about a person need: short codes and dates. Names and addresses (long
 * texts) are read only when asked for, see `PersonDetails`.
 */
export interface PersonRow {
  id: string;
  gender: "M" | "F";
  birthDate: string;
  hukouRegion: string;
  alive: boolean;
  diedOn: string | null;
}

export interface PersonDetails {
  name: string;
  ethnicity: string | null;
  hukouAddress: string | null;
}

export type ResidencePermitRow = typeof residencePermits.$inferSelect;

const ids = sql.placeholder("ids");

export class HukouStore {
  private readonly personsById;
  private readonly detailsById;
  private readonly parentsOfChildren;
  private readonly permitsOfPersons;

  constructor({ db }: DepartmentDatabase) {
    const batch = keyBatch(ids);
    // One row for the whole batch (see jsonPerKey): [gender, birthDate, …] per key, nulls where
    // the register has no such person (gender is never null otherwise).
    this.personsById = db
      .select({
        persons: jsonPerKey(
          sql`json_array(${persons.gender}, ${persons.birthDate}, ${persons.hukouRegion}, ${persons.alive}, ${persons.diedOn})`,
        ),
      })
      .from(batch)
      .leftJoin(persons, eq(persons.id, batchKey))
      .prepare();
    this.detailsById = db
      .select({
        index: batchIndex,
        name: persons.name,
        ethnicity: persons.ethnicity,
        hukouAddress: persons.hukouAddress,
      })
      .from(batch)
      .innerJoin(persons, eq(persons.id, batchKey))
      .prepare();
    this.parentsOfChildren = db
      .select({ index: batchIndex, parentId: parentage.parentId })
      .from(batch)
      .innerJoin(parentage, eq(parentage.childId, batchKey))
      .prepare();
    this.permitsOfPersons = db
      .select({
        index: batchIndex,
        number: residencePermits.number,
        personId: residencePermits.personId,
        kind: residencePermits.kind,
        region: residencePermits.region,
        validFrom: residencePermits.validFrom,
        validTo: residencePermits.validTo,
      })
      .from(batch)
      .innerJoin(residencePermits, eq(residencePermits.personId, batchKey))
      // Each person's permits in the order they were recorded, as the register has always listed them.
      .orderBy(asc(batchIndex), sql`${residencePermits}.rowid`)
      .prepare();
  }

  persons(keys: readonly string[]): Array<PersonRow | null> {
    const found = perKeyValues<[PersonRow["gender"] | null, string, string, number, string | null]>(
      this.personsById.values({ ids: JSON.stringify(keys) }),
      keys.length,
    );
    return found.map(([gender, birthDate, hukouRegion, alive, diedOn], index) =>
      gender === null
        ? null
        : // The key matched the id exactly, so it is the register's id.
          { id: keys[index] as string, gender, birthDate, hukouRegion, alive: alive === 1, diedOn },
    );
  }

  details(keys: readonly string[]): Array<PersonDetails | null> {
    const rows = this.detailsById.values({ ids: JSON.stringify(keys) }) as Array<
      [number, string, string | null, string | null]
    >;
    const result = new Array<PersonDetails | null>(keys.length).fill(null);
    for (const [index, name, ethnicity, hukouAddress] of rows) {
      result[index] = { name, ethnicity, hukouAddress };
    }
    return result;
  }

  parentIds(childIds: readonly string[]): string[][] {
    const rows = this.parentsOfChildren.values({ ids: JSON.stringify(childIds) }) as Array<
      [number, string]
    >;
    return groupByIndex(childIds.length, rows).map((group) => group.map((row) => row[1]));
  }

  permits(personIds: readonly string[]): ResidencePermitRow[][] {
    const rows = this.permitsOfPersons.values({ ids: JSON.stringify(personIds) }) as Array<
      [number, string, string, ResidencePermitRow["kind"], string, string, string]
    >;
    return groupByIndex(personIds.length, rows).map((group) =>
      group.map(([, number, personId, kind, region, validFrom, validTo]) => ({
        number,
        personId,
        kind,
        region,
        validFrom,
        validTo,
      })),
    );
  }
}
