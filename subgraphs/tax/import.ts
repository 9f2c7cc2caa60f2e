/** How tax records land in the tax database (upserts on subject, period and region). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import { type Drizzle, replaceAllButKey } from "../../common/sqlite.ts";
import { incomeTaxes, vats } from "./tables.ts";

const p = sql.placeholder;

export function taxWriter(db: Drizzle): (record: RecordsOf["tax"]) => void {
  const incomeTax = db
    .insert(incomeTaxes)
    .values({
      personId: p("personId"),
      period: p("period"),
      region: p("region"),
      amount: p("amount"),
      paidOn: p("paidOn"),
    })
    .onConflictDoUpdate({
      target: [incomeTaxes.personId, incomeTaxes.period, incomeTaxes.region],
      set: replaceAllButKey(incomeTaxes, [
        incomeTaxes.personId,
        incomeTaxes.period,
        incomeTaxes.region,
      ]),
    })
    .prepare();
  const vat = db
    .insert(vats)
    .values({
      uscc: p("uscc"),
      period: p("period"),
      region: p("region"),
      amount: p("amount"),
      paidOn: p("paidOn"),
    })
    .onConflictDoUpdate({
      target: [vats.uscc, vats.period, vats.region],
      set: replaceAllButKey(vats, [vats.uscc, vats.period, vats.region]),
    })
    .prepare();

  return (record) => {
    switch (record.kind) {
      case "incomeTax":
        incomeTax.run({ ...record });
        return;
      case "vat":
        vat.run({ ...record });
        return;
    }
  };
}
