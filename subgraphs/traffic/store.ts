/**
 * Batched reads of the traffic register: one prepared statement per fact, any batch size. Facts
 * that take arguments (a day, a kind, a region) bind them next to the batch of owners, so SQLite
 * answers with one row per owner instead of every licence or vehicle.
 */
import { and, asc, eq, sql } from "drizzle-orm";
import { groupByIndex } from "../../common/loaders.ts";
import {
  batchIndex,
  batchKey,
  type DepartmentDatabase,
  inRegion,
  jsonPerKey,
  keyBatch,
  perKeyValues,
} from "../../common/sqlite.ts";
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
    const batch = keyBatch(ids);
    this.licensesOfPersons = db
      .select({
        index: batchIndex,
        number: driverLicenses.number,
        personId: driverLicenses.personId,
        class: driverLicenses.class,
        issuedOn: driverLicenses.issuedOn,
        validUntil: driverLicenses.validUntil,
        status: driverLicenses.status,
      })
      .from(batch)
      .innerJoin(driverLicenses, eq(driverLicenses.personId, batchKey))
      .orderBy(asc(batchIndex), asc(driverLicenses.issuedOn), asc(driverLicenses.number))
      .prepare();
    // The answer per person computed by SQLite (it stops at the first valid licence), one row
    // for the whole batch (see jsonPerKey).
    this.personsWithValidLicense = db
      .select({
        valid: jsonPerKey(
          sql`exists (select 1 from ${driverLicenses} where ${and(
            eq(driverLicenses.personId, batchKey),
            eq(driverLicenses.status, "VALID"),
            sql`${driverLicenses.issuedOn} <= ${on}`,
            sql`${on} <= ${driverLicenses.validUntil}`,
          )})`,
        ),
      })
      .from(batch)
      .prepare();
    this.vehicleCountsOfOwners = db
      .select({
        vehicles: jsonPerKey(
          sql`(select count(*) from ${vehicles} where ${and(
            eq(vehicles.ownerId, batchKey),
            ofKind,
            inRegion(vehicles.region, regionPrefix),
            registeredOnTheDay,
          )})`,
        ),
      })
      .from(batch)
      .prepare();
    this.vehiclesOfOwners = db
      .select({
        index: batchIndex,
        plate: vehicles.plate,
        registeredOn: vehicles.registeredOn,
        ownerId: vehicles.ownerId,
        kind: vehicles.kind,
        region: vehicles.region,
        deregisteredOn: vehicles.deregisteredOn,
      })
      .from(batch)
      .innerJoin(vehicles, eq(vehicles.ownerId, batchKey))
      .where(and(ofKind, sql`(${on} is null or ${registeredOnTheDay})`))
      .orderBy(asc(batchIndex), asc(vehicles.registeredOn), asc(vehicles.plate))
      .prepare();
  }

  /** Every licence of each person, oldest first. */
  licenses(personIds: readonly string[]): DriverLicenseRow[][] {
    const rows = this.licensesOfPersons.values({ ids: JSON.stringify(personIds) }) as Array<
      [number, string, string, string, string, string, DriverLicenseRow["status"]]
    >;
    return groupByIndex(personIds.length, rows).map((group) =>
      group.map(([, number, personId, licenseClass, issuedOn, validUntil, status]) => ({
        number,
        personId,
        class: licenseClass,
        issuedOn,
        validUntil,
        status,
      })),
    );
  }

  /** Whether each person holds a licence with status VALID whose validity covers `day`. */
  hasValidLicense(personIds: readonly string[], day: string): boolean[] {
    return perKeyValues<number>(
      this.personsWithValidLicense.values({ ids: JSON.stringify(personIds), on: day }),
      personIds.length,
    ).map((valid) => valid === 1);
  }

  /** How many vehicles matching the filter each owner (PersonId or Uscc) has registered. */
  vehicleCounts(ownerIds: readonly string[], filter: OwnershipFilter): number[] {
    return perKeyValues<number>(
      this.vehicleCountsOfOwners.values({
        ids: JSON.stringify(ownerIds),
        kind: filter.kind,
        regionPrefix: filter.regionPrefix,
        on: filter.on,
      }),
      ownerIds.length,
    );
  }

  /** Each owner's registrations matching the filter, oldest first. */
  vehicles(ownerIds: readonly string[], filter: VehicleListFilter): VehicleRow[][] {
    const rows = this.vehiclesOfOwners.values({
      ids: JSON.stringify(ownerIds),
      kind: filter.kind,
      on: filter.on,
    }) as Array<[number, string, string, string, VehicleKind, string, string | null]>;
    return groupByIndex(ownerIds.length, rows).map((group) =>
      group.map(([, plate, registeredOn, ownerId, kind, region, deregisteredOn]) => ({
        plate,
        registeredOn,
        ownerId,
        kind,
        region,
        deregisteredOn,
      })),
    );
  }
}
