import { index, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const driverLicenses = sqliteTable(
  "driver_license",
  {
    number: text("number").primaryKey(),
    personId: text("person_id").notNull(),
    class: text("class").notNull(),
    issuedOn: text("issued_on").notNull(),
    validUntil: text("valid_until").notNull(),
    status: text("status", { enum: ["VALID", "SUSPENDED", "REVOKED"] }).notNull(),
  },
  (t) => [index("driver_license_person").on(t.personId)],
);

/**
 * A registration of a vehicle to an owner. A plate is reissued after deregistration, so the
 * natural key is the plate with its registration date; the owner is a PersonId or a Uscc.
 */
export const vehicles = sqliteTable(
  "vehicle",
  {
    plate: text("plate").notNull(),
    registeredOn: text("registered_on").notNull(),
    ownerId: text("owner_id").notNull(),
    kind: text("kind", { enum: ["PASSENGER_CAR", "TRUCK", "MOTORCYCLE", "OTHER"] }).notNull(),
    region: text("region").notNull(),
    deregisteredOn: text("deregistered_on"),
  },
  (t) => [primaryKey({ columns: [t.plate, t.registeredOn] }), index("vehicle_owner").on(t.ownerId)],
);

export const trafficTables = [driverLicenses, vehicles] as const;
