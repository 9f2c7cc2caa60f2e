/** How traffic-management records land in the traffic database (upserts on natural keys). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import type { Drizzle } from "../../common/sqlite.ts";
import { driverLicenses, vehicles } from "./tables.ts";

const p = sql.placeholder;

export function trafficWriter(db: Drizzle): (record: RecordsOf["traffic"]) => void {
  const license = db
    .insert(driverLicenses)
    .values({
      number: p("number"),
      personId: p("personId"),
      class: p("class"),
      issuedOn: p("issuedOn"),
      validUntil: p("validUntil"),
      status: p("status"),
    })
    .onConflictDoUpdate({
      target: driverLicenses.number,
      set: {
        personId: sql`excluded.person_id`,
        class: sql`excluded.class`,
        issuedOn: sql`excluded.issued_on`,
        validUntil: sql`excluded.valid_until`,
        status: sql`excluded.status`,
      },
    })
    .prepare();
  const vehicle = db
    .insert(vehicles)
    .values({
      plate: p("plate"),
      registeredOn: p("registeredOn"),
      ownerId: p("ownerId"),
      kind: p("vehicleKind"),
      region: p("region"),
      deregisteredOn: p("deregisteredOn"),
    })
    .onConflictDoUpdate({
      target: [vehicles.plate, vehicles.registeredOn],
      set: {
        ownerId: sql`excluded.owner_id`,
        kind: sql`excluded.kind`,
        region: sql`excluded.region`,
        deregisteredOn: sql`excluded.deregistered_on`,
      },
    })
    .prepare();

  return (record) => {
    switch (record.kind) {
      case "driverLicense":
        license.run({ ...record });
        return;
      case "vehicle":
        vehicle.run({ ...record });
        return;
    }
  };
}
