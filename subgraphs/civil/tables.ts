import { index, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * A marriage is the same record whichever party an export names first: the lower identity number
 * is stored as `party_a`, so the natural key is the unordered pair plus the registration date.
 */
export const marriages = sqliteTable(
  "marriage",
  {
    partyA: text("party_a").notNull(),
    partyB: text("party_b").notNull(),
    registeredOn: text("registered_on").notNull(),
    dissolvedOn: text("dissolved_on"),
    dissolution: text("dissolution", { enum: ["DIVORCE", "DEATH"] }),
  },
  // The primary key serves look-ups by party_a; the index serves those by party_b.
  (t) => [
    primaryKey({ columns: [t.partyA, t.partyB, t.registeredOn] }),
    index("marriage_party_b").on(t.partyB),
  ],
);

export const civilTables = [marriages] as const;
