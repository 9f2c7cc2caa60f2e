/**
 * Builders of department records for verification tests: each test case is a subject made for it,
 * written through the import contract (`writeRecords`), so that the policies run over real SQLite.
 */
import { DEPARTMENTS, type Department } from "../../common/departments.ts";
import { makePersonId, makeUscc } from "../../common/ids.ts";
import { addMonths } from "../../common/values.ts";
import { writeRecords } from "../helpers.ts";

/** The application date most tests use: the 60 months are 2021-11 … 2026-10, the years 2021 … 2025. */
export const D = "2026-11-01";
export const BEIJING_DISTRICT = "110105";
export const HEBEI_DISTRICT = "130102";

export class Records {
  readonly lines: Record<Department, object[]> = Object.fromEntries(
    DEPARTMENTS.map((department) => [department, []]),
  ) as unknown as Record<Department, object[]>;
  private sequence = 1;
  private plates = 10000;
  private permits = 1;
  private licences = 1;
  private organizations = 1;

  add(department: Department, line: object): this {
    this.lines[department].push(line);
    return this;
  }

  /** A person in the household register (alive unless `diedOn` is given); returns the id. */
  person(
    options: { birthDate?: string; hukouRegion?: string; diedOn?: string; region?: string } = {},
  ): string {
    const birthDate = options.birthDate ?? "1990-05-05";
    const region = options.region ?? options.hukouRegion ?? BEIJING_DISTRICT;
    // Odd sequence digits are male: keep the gender consistent with the id.
    const sequence = this.sequence;
    this.sequence += 2;
    const id = makePersonId(region, birthDate, sequence);
    this.add("hukou", {
      kind: "person",
      id,
      name: "测试",
      gender: "M",
      birthDate,
      hukouRegion: options.hukouRegion ?? region,
      status: options.diedOn ? "DECEASED" : "ALIVE",
      ...(options.diedOn ? { diedOn: options.diedOn } : {}),
    });
    return id;
  }

  /** A valid id the household register does not hold. */
  unknownPerson(): string {
    const id = makePersonId("110101", "1980-01-01", this.sequence);
    this.sequence += 2;
    return id;
  }

  permit(
    personId: string,
    permitKind: "RESIDENCE" | "WORK_RESIDENCE",
    validFrom = "2020-01-01",
    validTo = "2030-12-31",
    region = "110106",
  ): this {
    return this.add("hukou", {
      kind: "residencePermit",
      personId,
      number: `JZZ${String(this.permits++).padStart(12, "0")}`,
      permitKind,
      region,
      validFrom,
      validTo,
    });
  }

  licence(
    personId: string,
    issuedOn = "2010-01-01",
    validUntil = "2030-01-01",
    status: "VALID" | "SUSPENDED" | "REVOKED" = "VALID",
  ): this {
    return this.add("traffic", {
      kind: "driverLicense",
      personId,
      number: `L${String(this.licences++).padStart(11, "0")}`,
      class: "C1",
      issuedOn,
      validUntil,
      status,
    });
  }

  vehicle(
    ownerId: string,
    registeredOn: string,
    deregisteredOn: string | null = null,
    region = BEIJING_DISTRICT,
    vehicleKind = "PASSENGER_CAR",
  ): this {
    return this.add("traffic", {
      kind: "vehicle",
      plate: `京A${this.plates++}`,
      ownerId,
      vehicleKind,
      region,
      registeredOn,
      ...(deregisteredOn ? { deregisteredOn } : {}),
    });
  }

  /** Contributions for every month from `from` to `to`, paid on the 15th of the month. */
  contributions(
    personId: string,
    from: string,
    to: string,
    options: { region?: string; except?: string[]; paidOn?: Record<string, string> } = {},
  ): this {
    for (let month = from; month <= to; month = addMonths(month, 1)) {
      if (options.except?.includes(month)) continue;
      this.add("social", {
        kind: "contribution",
        personId,
        month,
        region: options.region ?? "110106",
        paidOn: options.paidOn?.[month] ?? `${month}-15`,
      });
    }
    return this;
  }

  incomeTax(
    personId: string,
    period: string,
    amount = "120.00",
    paidOn?: string,
    region = "110106",
  ): this {
    return this.add("tax", {
      kind: "incomeTax",
      personId,
      period,
      region,
      amount,
      paidOn: paidOn ?? `${addMonths(period, 1)}-10`,
    });
  }

  /** Income tax in June of every year from `from` to `to`. */
  incomeTaxYears(personId: string, from: number, to: number): this {
    for (let year = from; year <= to; year++) this.incomeTax(personId, `${year}-06`);
    return this;
  }

  /** An organisation in the market register; returns its code. */
  organization(
    options: { region?: string; status?: "ACTIVE" | "REVOKED" | "DEREGISTERED" } = {},
  ): string {
    const region = options.region ?? BEIJING_DISTRICT;
    const uscc = makeUscc(region, `MA${String(this.organizations++).padStart(7, "0")}`);
    this.add("market", {
      kind: "organization",
      uscc,
      name: "测试有限公司",
      orgKind: "ENTERPRISE",
      legalRepresentativeId: makePersonId("110105", "1980-01-01", 1),
      region,
      status: options.status ?? "ACTIVE",
      establishedOn: "2015-01-01",
    });
    return uscc;
  }

  /** An organisation code the market register does not hold. */
  unknownOrganization(): string {
    return makeUscc(BEIJING_DISTRICT, `MB${String(this.organizations++).padStart(7, "0")}`);
  }

  vat(
    uscc: string,
    period: string,
    amount: string,
    paidOn?: string,
    region = BEIJING_DISTRICT,
  ): this {
    return this.add("tax", {
      kind: "vat",
      uscc,
      period,
      region,
      amount,
      paidOn: paidOn ?? `${addMonths(period, 1)}-15`,
    });
  }

  write(dir: string): void {
    for (const department of DEPARTMENTS) {
      if (this.lines[department].length > 0) writeRecords(department, dir, this.lines[department]);
    }
  }
}

/** A migrant qualifying through 3c on D: Beijing residence permit, 60 months, 5 tax years. */
export function qualifiedMigrant(records: Records, birthDate = "1988-03-03"): string {
  const id = records.person({ birthDate, region: HEBEI_DISTRICT });
  records.permit(id, "RESIDENCE");
  records.contributions(id, "2021-11", "2026-10");
  records.incomeTaxYears(id, 2021, 2025);
  records.licence(id);
  return id;
}
