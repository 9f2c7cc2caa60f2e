/** How traffic-management records land in the traffic database (upserts on natural keys). */
import { sql } from "drizzle-orm";
import type { RecordsOf } from "../../common/records.ts";
import { type Drizzle, replaceAllButKey } from "../../common/sqlite.ts";
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
      set: replaceAllButKey(driverLicenses, driverLicenses.number),
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
      set: replaceAllButKey(vehicles, [vehicles.plate, vehicles.registeredOn]),
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
