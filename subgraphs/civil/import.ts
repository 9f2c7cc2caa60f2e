/** How marriage records land in the civil-affairs database (upserts on the natural key). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import { type Drizzle, replaceAllButKey } from "../../common/sqlite.ts";
import { marriages } from "./tables.ts";

const p = sql.placeholder;

export function civilWriter(db: Drizzle): (record: RecordsOf["civil"]) => void {
  const marriage = db
    .insert(marriages)
    .values({
      partyA: p("partyA"),
      partyB: p("partyB"),
      registeredOn: p("registeredOn"),
      dissolvedOn: p("dissolvedOn"),
      dissolution: p("dissolution"),
    })
    .onConflictDoUpdate({
      target: [marriages.partyA, marriages.partyB, marriages.registeredOn],
      set: replaceAllButKey(marriages, [
        marriages.partyA,
        marriages.partyB,
        marriages.registeredOn,
      ]),
    })
    .prepare();

  return (record) => {
    switch (record.kind) {
      case "marriage": {
        // Exports name the parties in either order; store the lower id first (see tables.ts).
        const [partyA, partyB] =
          record.partyA < record.partyB
            ? [record.partyA, record.partyB]
            : [record.partyB, record.partyA];
        marriage.run({ ...record, partyA, partyB });
        return;
      }
    }
  };
}
