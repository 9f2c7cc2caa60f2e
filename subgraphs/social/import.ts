/** How social-insurance records land in the social database (upserts on person and month). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import { type Drizzle, replaceAllButKey } from "../../common/sqlite.ts";
import { contributions } from "./tables.ts";

const p = sql.placeholder;

export function socialWriter(db: Drizzle): (record: RecordsOf["social"]) => void {
  const contribution = db
    .insert(contributions)
    .values({
      personId: p("personId"),
      month: p("month"),
      region: p("region"),
      employer: p("employer"),
      paidOn: p("paidOn"),
    })
    .onConflictDoUpdate({
      target: [contributions.personId, contributions.month],
      set: replaceAllButKey(contributions, [contributions.personId, contributions.month]),
    })
    .prepare();

  return (record) => {
    switch (record.kind) {
      case "contribution":
        contribution.run({ ...record });
        return;
    }
  };
}
