import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Individual income tax paid by a person for a month and region. Amounts are integer fen, so
 * SUM stays exact. The primary key (the natural key of the export) leads with the person and the
 * period, which is exactly the range a batch's year totals read. It ends with the payment date:
 * a month's tax may be paid in several payments (a late one, a supplement), and the policies add
 * up those paid by the application date (docs/spec/policies.md), so each is a record of its own.
 */
export const incomeTaxes = sqliteTable(
  "income_tax",
  {
    personId: text("person_id").notNull(),
    period: text("period").notNull(),
    region: text("region").notNull(),
    amount: integer("amount").notNull(),
    paidOn: text("paid_on").notNull(),
  },
  (t) => [primaryKey({ columns: [t.personId, t.period, t.region, t.paidOn] })],
);

/** Value-added tax paid by an organisation for a month and region (integer fen), per payment. */
export const vats = sqliteTable(
  "vat",
  {
    uscc: text("uscc").notNull(),
    period: text("period").notNull(),
    region: text("region").notNull(),
    amount: integer("amount").notNull(),
    paidOn: text("paid_on").notNull(),
  },
  (t) => [primaryKey({ columns: [t.uscc, t.period, t.region, t.paidOn] })],
);

export const taxTables = [incomeTaxes, vats] as const;
