/**
 * The import contract of `records.md`, as code: every kind of record a department exports, the
 * rule for each field, and the cross-field rules. Import and the demo population both go through
 * `parseRecord`, so nothing reaches a database that an export could not have carried.
 */

import type { Department } from "./departments.ts";
import { birthDateOfPersonId, genderOfPersonId, normalizePersonId, normalizeUscc } from "./ids.ts";
import { isRecordedRegionCode } from "./regions.ts";
import { isCalendarDate, isYearMonth, parseMoney } from "./values.ts";

export interface PersonRecord {
  kind: "person";
  id: string;
  name: string;
  gender: "M" | "F";
  birthDate: string;
  ethnicity: string | null;
  hukouRegion: string;
  hukouAddress: string | null;
  status: "ALIVE" | "DECEASED";
  diedOn: string | null;
}
export interface ParentageRecord {
  kind: "parentage";
  parentId: string;
  childId: string;
}
export interface ResidencePermitRecord {
  kind: "residencePermit";
  personId: string;
  number: string;
  permitKind: "RESIDENCE" | "WORK_RESIDENCE";
  region: string;
  validFrom: string;
  validTo: string;
}
export interface DriverLicenseRecord {
  kind: "driverLicense";
  personId: string;
  number: string;
  class: string;
  issuedOn: string;
  validUntil: string;
  status: "VALID" | "SUSPENDED" | "REVOKED";
}
export interface VehicleRecord {
  kind: "vehicle";
  plate: string;
  ownerId: string;
  vehicleKind: "PASSENGER_CAR" | "TRUCK" | "MOTORCYCLE" | "OTHER";
  region: string;
  registeredOn: string;
  deregisteredOn: string | null;
}
export interface ContributionRecord {
  kind: "contribution";
  personId: string;
  month: string;
  region: string;
  employer: string | null;
  paidOn: string;
}
/** Amounts are integer fen after parsing. */
export interface IncomeTaxRecord {
  kind: "incomeTax";
  personId: string;
  period: string;
  region: string;
  amount: number;
  paidOn: string;
}
export interface VatRecord {
  kind: "vat";
  uscc: string;
  period: string;
  region: string;
  amount: number;
  paidOn: string;
}
export interface OrganizationRecord {
  kind: "organization";
  uscc: string;
  name: string;
  orgKind: "ENTERPRISE" | "INDIVIDUAL_BUSINESS" | "PUBLIC_INSTITUTION" | "SOCIAL_ORGANIZATION";
  legalRepresentativeId: string;
  region: string;
  status: "ACTIVE" | "REVOKED" | "DEREGISTERED";
  establishedOn: string;
}
export interface MarriageRecord {
  kind: "marriage";
  partyA: string;
  partyB: string;
  registeredOn: string;
  dissolvedOn: string | null;
  dissolution: "DIVORCE" | "DEATH" | null;
}

export interface RecordsOf {
  hukou: PersonRecord | ParentageRecord | ResidencePermitRecord;
  traffic: DriverLicenseRecord | VehicleRecord;
  social: ContributionRecord;
  tax: IncomeTaxRecord | VatRecord;
  market: OrganizationRecord;
  civil: MarriageRecord;
}
export type AnyRecord = RecordsOf[Department];

type FieldRule =
  | "personId"
  | "uscc"
  | "personIdOrUscc"
  | "region"
  | "date"
  | "yearMonth"
  | "money"
  | "text"
  | readonly string[];

interface FieldSpec {
  rule: FieldRule;
  optional?: boolean;
}

const req = (rule: FieldRule): FieldSpec => ({ rule });
const opt = (rule: FieldRule): FieldSpec => ({ rule, optional: true });

/** Field rules per kind, keyed by department: a department imports only its own kinds. */
export const KINDS: { [D in Department]: Record<string, Record<string, FieldSpec>> } = {
  hukou: {
    person: {
      id: req("personId"),
      name: req("text"),
      gender: req(["M", "F"]),
      birthDate: req("date"),
      ethnicity: opt("text"),
      hukouRegion: req("region"),
      hukouAddress: opt("text"),
      status: req(["ALIVE", "DECEASED"]),
      diedOn: opt("date"),
    },
    parentage: { parentId: req("personId"), childId: req("personId") },
    residencePermit: {
      personId: req("personId"),
      number: req("text"),
      permitKind: req(["RESIDENCE", "WORK_RESIDENCE"]),
      region: req("region"),
      validFrom: req("date"),
      validTo: req("date"),
    },
  },
  traffic: {
    driverLicense: {
      personId: req("personId"),
      number: req("text"),
      class: req("text"),
      issuedOn: req("date"),
      validUntil: req("date"),
      status: req(["VALID", "SUSPENDED", "REVOKED"]),
    },
    vehicle: {
      plate: req("text"),
      ownerId: req("personIdOrUscc"),
      vehicleKind: req(["PASSENGER_CAR", "TRUCK", "MOTORCYCLE", "OTHER"]),
      region: req("region"),
      registeredOn: req("date"),
      deregisteredOn: opt("date"),
    },
  },
  social: {
    contribution: {
      personId: req("personId"),
      month: req("yearMonth"),
      region: req("region"),
      employer: opt("uscc"),
      paidOn: req("date"),
    },
  },
  tax: {
    incomeTax: {
      personId: req("personId"),
      period: req("yearMonth"),
      region: req("region"),
      amount: req("money"),
      paidOn: req("date"),
    },
    vat: {
      uscc: req("uscc"),
      period: req("yearMonth"),
      region: req("region"),
      amount: req("money"),
      paidOn: req("date"),
    },
  },
  market: {
    organization: {
      uscc: req("uscc"),
      name: req("text"),
      orgKind: req([
        "ENTERPRISE",
        "INDIVIDUAL_BUSINESS",
        "PUBLIC_INSTITUTION",
        "SOCIAL_ORGANIZATION",
      ]),
      legalRepresentativeId: req("personId"),
      region: req("region"),
      status: req(["ACTIVE", "REVOKED", "DEREGISTERED"]),
      establishedOn: req("date"),
    },
  },
  civil: {
    marriage: {
      partyA: req("personId"),
      partyB: req("personId"),
      registeredOn: req("date"),
      dissolvedOn: opt("date"),
      dissolution: opt(["DIVORCE", "DEATH"]),
    },
  },
};

export type ParseResult<R> = { ok: true; record: R } | { ok: false; reason: string };

function checkField(name: string, rule: FieldRule, value: unknown): { value: unknown } | string {
  if (typeof value !== "string") return `field "${name}" must be a string`;
  if (Array.isArray(rule)) {
    return rule.includes(value) ? { value } : `field "${name}" must be one of ${rule.join(", ")}`;
  }
  switch (rule) {
    case "personId": {
      const id = normalizePersonId(value);
      return id ? { value: id } : `field "${name}" is not a valid citizen identity number`;
    }
    case "uscc": {
      const code = normalizeUscc(value);
      return code ? { value: code } : `field "${name}" is not a valid unified social credit code`;
    }
    case "personIdOrUscc": {
      const id = normalizePersonId(value) ?? normalizeUscc(value);
      return id
        ? { value: id }
        : `field "${name}" is neither a valid identity number nor a valid credit code`;
    }
    case "region":
      return isRecordedRegionCode(value)
        ? { value }
        : `field "${name}" is not a GB/T 2260 division code`;
    case "date":
      return isCalendarDate(value) ? { value } : `field "${name}" is not a real YYYY-MM-DD date`;
    case "yearMonth":
      return isYearMonth(value) ? { value } : `field "${name}" is not a YYYY-MM month`;
    case "money": {
      const fen = parseMoney(value);
      return fen === null
        ? `field "${name}" is not a yuan amount with at most 2 decimals`
        : { value: fen };
    }
    case "text":
      return value.trim() === "" ? `field "${name}" is empty` : { value: value.trim() };
    default:
      return `field "${name}" has no rule`;
  }
}

/** Rules that relate fields of one record; null when the record is consistent. */
function crossFieldProblem(record: AnyRecord): string | null {
  switch (record.kind) {
    case "person":
      if (record.gender !== genderOfPersonId(record.id)) {
        return "gender disagrees with the sequence digit of the id";
      }
      if (record.birthDate !== birthDateOfPersonId(record.id)) {
        return "birthDate disagrees with the id";
      }
      if (record.status === "DECEASED" && record.diedOn === null) {
        return 'field "diedOn" is required when status is DECEASED';
      }
      if (record.status === "ALIVE" && record.diedOn !== null) {
        return 'field "diedOn" is only allowed when status is DECEASED';
      }
      return null;
    case "parentage":
      return record.parentId === record.childId ? "a person cannot be their own parent" : null;
    case "residencePermit":
      return record.validTo < record.validFrom ? "validTo is before validFrom" : null;
    case "driverLicense":
      return record.validUntil < record.issuedOn ? "validUntil is before issuedOn" : null;
    case "vehicle":
      return record.deregisteredOn !== null && record.deregisteredOn < record.registeredOn
        ? "deregisteredOn is before registeredOn"
        : null;
    case "marriage":
      if (record.partyA === record.partyB) return "a person cannot marry themselves";
      if ((record.dissolvedOn === null) !== (record.dissolution === null)) {
        return 'fields "dissolvedOn" and "dissolution" go together';
      }
      if (record.dissolvedOn !== null && record.dissolvedOn < record.registeredOn) {
        return "dissolvedOn is before registeredOn";
      }
      return null;
    default:
      return null;
  }
}

/**
 * Validates one parsed line of a department's export. Unknown fields are ignored (exports may
 * carry more than the contract); missing optional fields become null.
 */
export function parseRecord<D extends Department>(
  department: D,
  line: unknown,
): ParseResult<RecordsOf[D]> {
  if (typeof line !== "object" || line === null || Array.isArray(line)) {
    return { ok: false, reason: "line is not a JSON object" };
  }
  const input = line as Record<string, unknown>;
  const kind = input.kind;
  if (typeof kind !== "string") return { ok: false, reason: 'field "kind" is missing' };
  // Own kinds only: "constructor" or "__proto__" would find Object's through the prototype.
  const fields = Object.hasOwn(KINDS[department], kind) ? KINDS[department][kind] : undefined;
  if (!fields) {
    const known = Object.keys(KINDS[department]).join(", ");
    return { ok: false, reason: `kind "${kind}" is not one of ${department}'s kinds (${known})` };
  }
  const record: Record<string, unknown> = { kind };
  for (const [name, spec] of Object.entries(fields)) {
    const value = input[name];
    if (value === undefined || value === null || value === "") {
      if (!spec.optional) return { ok: false, reason: `field "${name}" is missing` };
      record[name] = null;
      continue;
    }
    const checked = checkField(name, spec.rule, value);
    if (typeof checked === "string") return { ok: false, reason: checked };
    record[name] = checked.value;
  }
  const typed = record as unknown as RecordsOf[D];
  const problem = crossFieldProblem(typed);
  return problem ? { ok: false, reason: problem } : { ok: true, record: typed };
}
