/** How household-registration records land in the hukou database (upserts on natural keys). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import { type Drizzle, replaceAllButKey } from "../../common/sqlite.ts";
import { parentage, persons, residencePermits } from "./tables.ts";

const p = sql.placeholder;

export function hukouWriter(db: Drizzle): (record: RecordsOf["hukou"]) => void {
  const person = db
    .insert(persons)
    .values({
      id: p("id"),
      name: p("name"),
      gender: p("gender"),
      birthDate: p("birthDate"),
      ethnicity: p("ethnicity"),
      hukouRegion: p("hukouRegion"),
      hukouAddress: p("hukouAddress"),
      alive: p("alive"),
      diedOn: p("diedOn"),
    })
    .onConflictDoUpdate({
      target: persons.id,
      set: replaceAllButKey(persons, persons.id),
    })
    .prepare();
  const parent = db
    .insert(parentage)
    .values({ parentId: p("parentId"), childId: p("childId") })
    .onConflictDoNothing()
    .prepare();
  const permit = db
    .insert(residencePermits)
    .values({
      number: p("number"),
      personId: p("personId"),
      kind: p("permitKind"),
      region: p("region"),
      validFrom: p("validFrom"),
      validTo: p("validTo"),
    })
    .onConflictDoUpdate({
      target: residencePermits.number,
      set: replaceAllButKey(residencePermits, residencePermits.number),
    })
    .prepare();

  return (record) => {
    switch (record.kind) {
      case "person":
        person.run({ ...record, alive: record.status === "ALIVE" ? 1 : 0 });
        return;
      case "parentage":
        parent.run({ ...record });
        return;
      case "residencePermit":
        permit.run({ ...record });
        return;
    }
  };
}
