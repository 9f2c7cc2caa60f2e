/** How tax records land in the tax database (upserts on subject, period, region and payment date). */
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
      target: [incomeTaxes.personId, incomeTaxes.period, incomeTaxes.region, incomeTaxes.paidOn],
      set: replaceAllButKey(incomeTaxes, [
        incomeTaxes.personId,
        incomeTaxes.period,
        incomeTaxes.region,
        incomeTaxes.paidOn,
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
      target: [vats.uscc, vats.period, vats.region, vats.paidOn],
      set: replaceAllButKey(vats, [vats.uscc, vats.period, vats.region, vats.paidOn]),
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
