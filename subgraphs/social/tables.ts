import { primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * One contribution per person and month (the natural key of `records.md`). The primary key
 * (person_id, month) makes the table WITHOUT ROWID, so a batch's month-range queries read the
 * rows in key order with no separate index.
 */
export const contributions = sqliteTable(
  "contribution",
  {
    personId: text("person_id").notNull(),
    month: text("month").notNull(),
    region: text("region").notNull(),
    employer: text("employer"),
    paidOn: text("paid_on").notNull(),
  },
  (t) => [primaryKey({ columns: [t.personId, t.month] })],
);

export const socialTables = [contributions] as const;
