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
  // Covering `hasValidDriverLicense` (status, issued, valid until): a person's licences are
  // judged from this index alone, without a lookup into the table per licence (over 1,000
  // persons 0.83–1.16 → 0.60 µs a person, see docs/performance.md).
  (t) => [index("driver_license_validity").on(t.personId, t.status, t.issuedOn, t.validUntil)],
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
  (t) => [
    primaryKey({ columns: [t.plate, t.registeredOn] }),
    // Covering `vehicleCount`/`ownsVehicle` (kind, region, registration period): counted from
    // this index alone (over 1,000 owners 0.70–0.83 → 0.58 µs an owner).
    index("vehicle_holding").on(t.ownerId, t.kind, t.region, t.registeredOn, t.deregisteredOn),
  ],
);

export const trafficTables = [driverLicenses, vehicles] as const;
