import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * One row per registered person. `person_core` holds, beside the id, every column most questions
 * need (`PersonRow` in store.ts), so a batch's lookup reads one narrow B-tree and never the wide
 * rows with names and addresses.
 */
export const persons = sqliteTable(
  "person",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    gender: text("gender", { enum: ["M", "F"] }).notNull(),
    birthDate: text("birth_date").notNull(),
    ethnicity: text("ethnicity"),
    hukouRegion: text("hukou_region").notNull(),
    hukouAddress: text("hukou_address"),
    alive: integer("alive", { mode: "boolean" }).notNull(),
    diedOn: text("died_on"),
  },
  (t) => [index("person_core").on(t.id, t.gender, t.birthDate, t.hukouRegion, t.alive, t.diedOn)],
);

export const parentage = sqliteTable(
  "parentage",
  {
    childId: text("child_id").notNull(),
    parentId: text("parent_id").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.childId, t.parentId] }),
    index("parentage_parent").on(t.parentId),
  ],
);

export const residencePermits = sqliteTable(
  "residence_permit",
  {
    number: text("number").primaryKey(),
    personId: text("person_id").notNull(),
    kind: text("kind", { enum: ["RESIDENCE", "WORK_RESIDENCE"] }).notNull(),
    region: text("region").notNull(),
    validFrom: text("valid_from").notNull(),
    validTo: text("valid_to").notNull(),
  },
  (t) => [index("residence_permit_person").on(t.personId)],
);

export const hukouTables = [persons, parentage, residencePermits] as const;
