/** How market-register records land in the market database (upserts on the credit code). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import { type Drizzle, replaceAllButKey } from "../../common/sqlite.ts";
import { organizations } from "./tables.ts";

const p = sql.placeholder;

export function marketWriter(db: Drizzle): (record: RecordsOf["market"]) => void {
  const organization = db
    .insert(organizations)
    .values({
      uscc: p("uscc"),
      name: p("name"),
      kind: p("orgKind"),
      legalRepresentativeId: p("legalRepresentativeId"),
      region: p("region"),
      status: p("status"),
      establishedOn: p("establishedOn"),
    })
    .onConflictDoUpdate({
      target: organizations.uscc,
      set: replaceAllButKey(organizations, organizations.uscc),
    })
    .prepare();

  return (record) => {
    switch (record.kind) {
      case "organization":
        organization.run({ ...record });
        return;
    }
  };
}
