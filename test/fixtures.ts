/**
 * A small, coherent population across the six departments for end-to-end tests: a Beijing family
 * with a company, a migrant from Hebei, a child, a deceased grandparent.
 */
import type { Department } from "../common/departments.ts";
import { writeRecords } from "./helpers.ts";

export const ZHANG_WEI = "110105198503121015"; // Beijing hukou, licence, car, company, married
export const LI_NA = "110108198707081026"; // his wife
export const WANG_QIANG = "130102199001202113"; // migrant from Hebei with a residence permit
export const ZHANG_XIAOMING = "110105201205011031"; // their son, a minor
export const ZHANG_LAO = "110101195002021113"; // Zhang Wei's father, deceased
export const PUBLISHED_EXAMPLE = "11010519491231002X"; // GB 11643 example number
export const ZHANG_COMPANY = "91110105MA01ABC1XD";
export const HEBEI_COMPANY = "91130102MA02DEF2YY";

export const FIXTURES: Record<Department, object[]> = {
  hukou: [
    {
      kind: "person",
      id: ZHANG_WEI,
      name: "张伟",
      gender: "M",
      birthDate: "1985-03-12",
      hukouRegion: "110105",
      hukouAddress: "朝阳区建国路1号",
      status: "ALIVE",
    },
    {
      kind: "person",
      id: LI_NA,
      name: "李娜",
      gender: "F",
      birthDate: "1987-07-08",
      hukouRegion: "110108",
      status: "ALIVE",
    },
    {
      kind: "person",
      id: WANG_QIANG,
      name: "王强",
      gender: "M",
      birthDate: "1990-01-20",
      hukouRegion: "130102",
      status: "ALIVE",
    },
    {
      kind: "person",
      id: ZHANG_XIAOMING,
      name: "张小明",
      gender: "M",
      birthDate: "2012-05-01",
      hukouRegion: "110105",
      status: "ALIVE",
    },
    {
      kind: "person",
      id: ZHANG_LAO,
      name: "张老",
      gender: "M",
      birthDate: "1950-02-02",
      hukouRegion: "110101",
      status: "DECEASED",
      diedOn: "2020-06-30",
    },
    {
      kind: "person",
      id: PUBLISHED_EXAMPLE,
      name: "王秀英",
      gender: "F",
      birthDate: "1949-12-31",
      hukouRegion: "110105",
      status: "ALIVE",
    },
    { kind: "parentage", parentId: ZHANG_WEI, childId: ZHANG_XIAOMING },
    { kind: "parentage", parentId: LI_NA, childId: ZHANG_XIAOMING },
    { kind: "parentage", parentId: ZHANG_LAO, childId: ZHANG_WEI },
    {
      kind: "residencePermit",
      personId: WANG_QIANG,
      number: "JZZ110000201800001",
      permitKind: "RESIDENCE",
      region: "110106",
      validFrom: "2018-03-01",
      validTo: "2028-02-29",
    },
  ],
  traffic: [
    {
      kind: "driverLicense",
      personId: ZHANG_WEI,
      number: "110105198503121015",
      class: "C1",
      issuedOn: "2008-09-01",
      validUntil: "2030-09-01",
      status: "VALID",
    },
    {
      kind: "driverLicense",
      personId: WANG_QIANG,
      number: "130102199001202113",
      class: "C1",
      issuedOn: "2012-01-10",
      validUntil: "2024-01-10",
      status: "VALID",
    },
    {
      kind: "vehicle",
      plate: "京A12345",
      ownerId: ZHANG_WEI,
      vehicleKind: "PASSENGER_CAR",
      region: "110105",
      registeredOn: "2015-04-01",
    },
    {
      kind: "vehicle",
      plate: "京N88888",
      ownerId: ZHANG_COMPANY,
      vehicleKind: "PASSENGER_CAR",
      region: "110105",
      registeredOn: "2019-06-01",
    },
  ],
  social: [
    {
      kind: "contribution",
      personId: WANG_QIANG,
      month: "2025-10",
      region: "110106",
      employer: ZHANG_COMPANY,
      paidOn: "2025-10-15",
    },
    {
      kind: "contribution",
      personId: WANG_QIANG,
      month: "2025-11",
      region: "110106",
      employer: ZHANG_COMPANY,
      paidOn: "2025-11-15",
    },
    {
      kind: "contribution",
      personId: WANG_QIANG,
      month: "2025-12",
      region: "110106",
      employer: ZHANG_COMPANY,
      paidOn: "2026-02-01",
    },
  ],
  tax: [
    {
      kind: "incomeTax",
      personId: WANG_QIANG,
      period: "2025-06",
      region: "110106",
      amount: "320.50",
      paidOn: "2025-07-10",
    },
    {
      kind: "vat",
      uscc: ZHANG_COMPANY,
      period: "2025-03",
      region: "110105",
      amount: "60000.00",
      paidOn: "2025-04-15",
    },
  ],
  market: [
    {
      kind: "organization",
      uscc: ZHANG_COMPANY,
      name: "北京张氏科技有限公司",
      orgKind: "ENTERPRISE",
      legalRepresentativeId: ZHANG_WEI,
      region: "110105",
      status: "ACTIVE",
      establishedOn: "2016-08-08",
    },
    {
      kind: "organization",
      uscc: HEBEI_COMPANY,
      name: "石家庄王氏商贸有限公司",
      orgKind: "ENTERPRISE",
      legalRepresentativeId: WANG_QIANG,
      region: "130102",
      status: "REVOKED",
      establishedOn: "2017-01-01",
    },
  ],
  civil: [{ kind: "marriage", partyA: ZHANG_WEI, partyB: LI_NA, registeredOn: "2010-10-10" }],
};

export function writeFixtures(dir: string): void {
  for (const [department, lines] of Object.entries(FIXTURES)) {
    writeRecords(department as Department, dir, lines);
  }
}
