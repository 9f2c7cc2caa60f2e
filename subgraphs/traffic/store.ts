/**
 * Batched reads of the traffic register: one prepared statement per fact, any batch size. Facts
 * that take arguments (a day, a kind, a region) bind them next to the batch of owners, so SQLite
 * answers with one row per owner instead of every licence or vehicle.
 */
import { and, asc, count, eq, sql } from "drizzle-orm";
import { groupRows, valueByKey } from "../../common/loaders.ts";
import { type DepartmentDatabase, inJsonArray, inRegion } from "../../common/sqlite.ts";
import { driverLicenses, vehicles } from "./tables.ts";

export type DriverLicenseRow = typeof driverLicenses.$inferSelect;
export type VehicleRow = typeof vehicles.$inferSelect;
export type VehicleKind = VehicleRow["kind"];

/** Which registrations count towards ownership: kind null = any kind, prefix "" = any region. */
export interface OwnershipFilter {
  kind: VehicleKind | null;
  regionPrefix: string;
  on: string;
}

/** Which registrations to list: `on` null = every registration, past ones included. */
export interface VehicleListFilter {
  kind: VehicleKind | null;
  on: string | null;
}

const ids = sql.placeholder("ids");
const on = sql.placeholder("on");
const kind = sql.placeholder("kind");
const regionPrefix = sql.placeholder("regionPrefix");

/** Registered to its owner on `on`: `registeredOn ≤ on` and not deregistered by then. */
const registeredOnTheDay = sql`(${vehicles.registeredOn} <= ${on} and (${vehicles.deregisteredOn} is null or ${vehicles.deregisteredOn} > ${on}))`;

/** A null `kind` parameter matches every kind. */
const ofKind = sql`(${kind} is null or ${vehicles.kind} = ${kind})`;

export class TrafficStore {
  private readonly licensesOfPersons;
  private readonly personsWithValidLicense;
  private readonly vehicleCountsOfOwners;
  private readonly vehiclesOfOwners;

  constructor({ db }: DepartmentDatabase) {
    this.licensesOfPersons = db
      .select()
      .from(driverLicenses)
      .where(inJsonArray(driverLicenses.personId, ids))
      .orderBy(asc(driverLicenses.issuedOn), asc(driverLicenses.number))
      .prepare();
    this.personsWithValidLicense = db
      .selectDistinct({ personId: driverLicenses.personId })
      .from(driverLicenses)
      .where(
        and(
          inJsonArray(driverLicenses.personId, ids),
          eq(driverLicenses.status, "VALID"),
          sql`${driverLicenses.issuedOn} <= ${on}`,
          sql`${on} <= ${driverLicenses.validUntil}`,
        ),
      )
      .prepare();
    this.vehicleCountsOfOwners = db
      .select({ ownerId: vehicles.ownerId, vehicles: count() })
      .from(vehicles)
      .where(
        and(
          inJsonArray(vehicles.ownerId, ids),
          ofKind,
          inRegion(vehicles.region, regionPrefix),
          registeredOnTheDay,
        ),
      )
      .groupBy(vehicles.ownerId)
      .prepare();
    this.vehiclesOfOwners = db
      .select()
      .from(vehicles)
      .where(
        and(
          inJsonArray(vehicles.ownerId, ids),
          ofKind,
          sql`(${on} is null or ${registeredOnTheDay})`,
        ),
      )
      .orderBy(asc(vehicles.registeredOn), asc(vehicles.plate))
      .prepare();
  }

  /** Every licence of each person, oldest first. */
  licenses(personIds: readonly string[]): DriverLicenseRow[][] {
    const rows = this.licensesOfPersons.all({ ids: JSON.stringify(personIds) });
    return groupRows(personIds, rows, (row) => row.personId);
  }

  /** Whether each person holds a licence with status VALID whose validity covers `day`. */
  hasValidLicense(personIds: readonly string[], day: string): boolean[] {
    const rows = this.personsWithValidLicense.all({ ids: JSON.stringify(personIds), on: day });
    return valueByKey(
      personIds,
      rows,
      (row) => row.personId,
      () => true,
      false,
    );
  }

  /** How many vehicles matching the filter each owner (PersonId or Uscc) has registered. */
  vehicleCounts(ownerIds: readonly string[], filter: OwnershipFilter): number[] {
    const rows = this.vehicleCountsOfOwners.all({
      ids: JSON.stringify(ownerIds),
      kind: filter.kind,
      regionPrefix: filter.regionPrefix,
      on: filter.on,
    });
    return valueByKey(
      ownerIds,
      rows,
      (row) => row.ownerId,
      (row) => row.vehicles,
      0,
    );
  }

  /** Each owner's registrations matching the filter, oldest first. */
  vehicles(ownerIds: readonly string[], filter: VehicleListFilter): VehicleRow[][] {
    const rows = this.vehiclesOfOwners.all({
      ids: JSON.stringify(ownerIds),
      kind: filter.kind,
      on: filter.on,
    });
    return groupRows(ownerIds, rows, (row) => row.ownerId);
  }
}
