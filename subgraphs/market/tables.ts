import { index, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const organizations = sqliteTable(
  "organization",
  {
    uscc: text("uscc").primaryKey(),
    name: text("name").notNull(),
    kind: text("kind", {
      enum: ["ENTERPRISE", "INDIVIDUAL_BUSINESS", "PUBLIC_INSTITUTION", "SOCIAL_ORGANIZATION"],
    }).notNull(),
    legalRepresentativeId: text("legal_representative_id").notNull(),
    region: text("region").notNull(),
    status: text("status", { enum: ["ACTIVE", "REVOKED", "DEREGISTERED"] }).notNull(),
    establishedOn: text("established_on").notNull(),
  },
  // Persons ask "which organisations do I represent?" in batches: one index range per person.
  (t) => [index("organization_legal_representative").on(t.legalRepresentativeId)],
);

export const marketTables = [organizations] as const;
