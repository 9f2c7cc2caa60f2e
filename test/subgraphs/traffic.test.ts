import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setClock } from "../../common/clock.ts";
import { makePersonId, makeUscc } from "../../common/ids.ts";
import { buildTrafficSubgraph } from "../../subgraphs/traffic/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

// The application day D of the checks below, and its neighbours.
const D = "2026-06-15";
const DAY_BEFORE = "2026-06-14";
const DAY_AFTER = "2026-06-16";

const licensedFromD = makePersonId("110105", "1990-03-07", 11);
const licensedUntilD = makePersonId("110108", "1985-11-20", 22);
const suspended = makePersonId("130102", "1979-01-31", 33);
const unknown = makePersonId("120101", "2000-02-29", 44);
const company = makeUscc("110105", "MA001ABC1");

const records = [
  {
    kind: "driverLicense",
    personId: licensedFromD,
    number: "110105199003070113",
    class: "C1",
    issuedOn: D,
    validUntil: "2032-06-15",
    status: "VALID",
  },
  {
    kind: "driverLicense",
    personId: licensedUntilD,
    number: "110108198511200221",
    class: "C2",
    issuedOn: "2016-06-15",
    validUntil: D,
    status: "VALID",
  },
  {
    kind: "driverLicense",
    personId: suspended,
    number: "130102197901310331",
    class: "A2",
    issuedOn: "2020-01-01",
    validUntil: "2030-01-01",
    status: "SUSPENDED",
  },
  {
    kind: "driverLicense",
    personId: suspended,
    number: "130102197901310332",
    class: "C1",
    issuedOn: "2010-01-01",
    validUntil: "2030-01-01",
    status: "REVOKED",
  },
  // Registered on D: owned on D, not the day before.
  {
    kind: "vehicle",
    plate: "京A00001",
    ownerId: licensedFromD,
    vehicleKind: "PASSENGER_CAR",
    region: "110105",
    registeredOn: D,
  },
  // Deregistered on D: owned the day before, not on D.
  {
    kind: "vehicle",
    plate: "京B00002",
    ownerId: licensedUntilD,
    vehicleKind: "PASSENGER_CAR",
    region: "110108",
    registeredOn: "2020-01-01",
    deregisteredOn: D,
  },
  {
    kind: "vehicle",
    plate: "冀A00003",
    ownerId: licensedUntilD,
    vehicleKind: "TRUCK",
    region: "130102",
    registeredOn: "2021-03-01",
  },
  // The same plate registered again, to another owner, on the day it was deregistered.
  {
    kind: "vehicle",
    plate: "京B00002",
    ownerId: suspended,
    vehicleKind: "PASSENGER_CAR",
    region: "110105",
    registeredOn: D,
  },
  {
    kind: "vehicle",
    plate: "京C00001",
    ownerId: company,
    vehicleKind: "PASSENGER_CAR",
    region: "110101",
    registeredOn: "2019-05-01",
  },
  {
    kind: "vehicle",
    plate: "京C00002",
    ownerId: company,
    vehicleKind: "PASSENGER_CAR",
    region: "110105",
    registeredOn: "2022-08-08",
  },
  {
    kind: "vehicle",
    plate: "津C00003",
    ownerId: company,
    vehicleKind: "TRUCK",
    region: "120101",
    registeredOn: "2023-02-01",
  },
  {
    kind: "vehicle",
    plate: "京C00004",
    ownerId: company,
    vehicleKind: "PASSENGER_CAR",
    region: "110101",
    registeredOn: "2015-01-01",
    deregisteredOn: "2025-01-01",
  },
];

const ENTITIES = /* GraphQL */ `
  query ($representations: [_Any!]!) {
    _entities(representations: $representations) {
      ... on Person {
        id
        validOnD: hasValidDriverLicense(on: "${D}")
        validDayBefore: hasValidDriverLicense(on: "${DAY_BEFORE}")
        validDayAfter: hasValidDriverLicense(on: "${DAY_AFTER}")
      }
    }
  }
`;

const person = (id: string) => ({ __typename: "Person", id });
const organization = (uscc: string) => ({ __typename: "Organization", uscc });

type Entities<T> = { _entities: T[] };

describe("traffic subgraph", () => {
  const data = tempDataDir();
  let app: FastifyInstance;

  beforeAll(async () => {
    // Importing the same export twice must leave the store as after the first import.
    writeRecords("traffic", data.dir, records);
    writeRecords("traffic", data.dir, records);
    app = await buildTrafficSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
  });

  afterAll(async () => {
    setClock(null);
    await app?.close();
    data.remove();
  });

  it("answers _entities in the order of the representations, unknown persons included", async () => {
    const result = await inject<Entities<Record<string, unknown>>>(app, ENTITIES, {
      representations: [licensedFromD, unknown, licensedUntilD, suspended].map(person),
    });
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      { id: licensedFromD, validOnD: true, validDayBefore: false, validDayAfter: true },
      { id: unknown, validOnD: false, validDayBefore: false, validDayAfter: false },
      { id: licensedUntilD, validOnD: true, validDayBefore: true, validDayAfter: false },
      { id: suspended, validOnD: false, validDayBefore: false, validDayAfter: false },
    ]);
  });

  it("lists licences with their status and validity on a day", async () => {
    const result = await inject<Entities<Record<string, unknown>>>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              driverLicenses {
                number
                class
                issuedOn
                validUntil
                status
                validOnD: validOn(on: "${D}")
                validDayAfter: validOn(on: "${DAY_AFTER}")
              }
            }
          }
        }
      `,
      { representations: [suspended, licensedUntilD, unknown].map(person) },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      {
        driverLicenses: [
          {
            number: "130102197901310332",
            class: "C1",
            issuedOn: "2010-01-01",
            validUntil: "2030-01-01",
            status: "REVOKED",
            validOnD: false,
            validDayAfter: false,
          },
          {
            number: "130102197901310331",
            class: "A2",
            issuedOn: "2020-01-01",
            validUntil: "2030-01-01",
            status: "SUSPENDED",
            validOnD: false,
            validDayAfter: false,
          },
        ],
      },
      {
        driverLicenses: [
          {
            number: "110108198511200221",
            class: "C2",
            issuedOn: "2016-06-15",
            validUntil: D,
            status: "VALID",
            validOnD: true,
            validDayAfter: false,
          },
        ],
      },
      { driverLicenses: [] },
    ]);
  });

  it("defaults an omitted day to today in Beijing", async () => {
    // 2026-06-15T17:00Z is already 2026-06-16 in Beijing: the licence valid until D has lapsed.
    setClock("2026-06-15T17:00:00Z");
    const result = await inject<Entities<Record<string, unknown>>>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person { hasValidDriverLicense ownsVehicle }
          }
        }
      `,
      { representations: [licensedFromD, licensedUntilD].map(person) },
    );
    setClock(null);
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      { hasValidDriverLicense: true, ownsVehicle: true },
      { hasValidDriverLicense: false, ownsVehicle: false },
    ]);
  });

  it("counts a vehicle from its registration day and not on its deregistration day", async () => {
    const result = await inject<Entities<Record<string, unknown>>>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              onD: ownsVehicle(on: "${D}")
              dayBefore: ownsVehicle(on: "${DAY_BEFORE}")
              countOnD: vehicleCount(on: "${D}")
              carsOnD: vehicleCount(kind: PASSENGER_CAR, on: "${D}")
            }
          }
        }
      `,
      { representations: [licensedFromD, licensedUntilD, suspended, unknown].map(person) },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      { onD: true, dayBefore: false, countOnD: 1, carsOnD: 1 },
      { onD: false, dayBefore: true, countOnD: 1, carsOnD: 0 },
      { onD: true, dayBefore: false, countOnD: 1, carsOnD: 1 },
      { onD: false, dayBefore: false, countOnD: 0, carsOnD: 0 },
    ]);
  });

  it("filters ownership by region: province, city, county or any", async () => {
    const result = await inject<Entities<Record<string, unknown>>>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              truckInBeijing: ownsVehicle(kind: TRUCK, region: "110000", on: "${D}")
              truckInHebei: ownsVehicle(kind: TRUCK, region: "130000", on: "${D}")
              truckInShijiazhuang: ownsVehicle(kind: TRUCK, region: "130100", on: "${D}")
              truckInChangan: ownsVehicle(kind: TRUCK, region: "130102", on: "${D}")
              truckAnywhere: ownsVehicle(kind: TRUCK, on: "${D}")
              carInBeijingDayBefore: ownsVehicle(region: "110000", on: "${DAY_BEFORE}")
              carInChaoyangDayBefore: ownsVehicle(region: "110105", on: "${DAY_BEFORE}")
            }
          }
        }
      `,
      { representations: [person(licensedUntilD)] },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      {
        truckInBeijing: false,
        truckInHebei: true,
        truckInShijiazhuang: true,
        truckInChangan: true,
        truckAnywhere: true,
        carInBeijingDayBefore: true,
        carInChaoyangDayBefore: false,
      },
    ]);
  });

  it("answers ownership for organisations and persons in one request", async () => {
    const result = await inject<Entities<Record<string, unknown>>>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Organization {
              uscc
              carInBeijing: ownsVehicle(region: "110000", on: "${D}")
              carsInBeijing: vehicleCount(kind: PASSENGER_CAR, region: "110000", on: "${D}")
              allKinds: vehicleCount(on: "${D}")
              inTianjin: vehicleCount(region: "120000", on: "${D}")
              carsIn2016: vehicleCount(kind: PASSENGER_CAR, on: "2016-01-01")
            }
            ... on Person {
              id
              carInBeijing: ownsVehicle(region: "110000", on: "${D}")
            }
          }
        }
      `,
      {
        representations: [
          organization(company),
          person(licensedFromD),
          organization(makeUscc("110105", "MA001ABC2")),
        ],
      },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      {
        uscc: company,
        carInBeijing: true,
        carsInBeijing: 2,
        allKinds: 3,
        inTianjin: 1,
        carsIn2016: 1,
      },
      { id: licensedFromD, carInBeijing: true },
      {
        uscc: makeUscc("110105", "MA001ABC2"),
        carInBeijing: false,
        carsInBeijing: 0,
        allKinds: 0,
        inTianjin: 0,
        carsIn2016: 0,
      },
    ]);
  });

  it("lists an owner's vehicles: all registrations, or those in force on a day", async () => {
    const result = await inject<Entities<Record<string, unknown>>>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Organization {
              all: vehicles {
                plate
                kind
                region { code name province }
                registeredOn
                deregisteredOn
              }
              onD: vehicles(on: "${D}") { plate }
              trucks: vehicles(kind: TRUCK) { plate }
            }
            ... on Person {
              all: vehicles { plate registeredOn deregisteredOn }
              onD: vehicles(on: "${D}") { plate }
            }
          }
        }
      `,
      { representations: [organization(company), person(licensedUntilD)] },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?._entities).toEqual([
      {
        all: [
          {
            plate: "京C00004",
            kind: "PASSENGER_CAR",
            region: { code: "110101", name: "北京市东城区", province: "北京市" },
            registeredOn: "2015-01-01",
            deregisteredOn: "2025-01-01",
          },
          {
            plate: "京C00001",
            kind: "PASSENGER_CAR",
            region: { code: "110101", name: "北京市东城区", province: "北京市" },
            registeredOn: "2019-05-01",
            deregisteredOn: null,
          },
          {
            plate: "京C00002",
            kind: "PASSENGER_CAR",
            region: { code: "110105", name: "北京市朝阳区", province: "北京市" },
            registeredOn: "2022-08-08",
            deregisteredOn: null,
          },
          {
            plate: "津C00003",
            kind: "TRUCK",
            region: { code: "120101", name: "天津市和平区", province: "天津市" },
            registeredOn: "2023-02-01",
            deregisteredOn: null,
          },
        ],
        onD: [{ plate: "京C00001" }, { plate: "京C00002" }, { plate: "津C00003" }],
        trucks: [{ plate: "津C00003" }],
      },
      {
        all: [
          { plate: "京B00002", registeredOn: "2020-01-01", deregisteredOn: D },
          { plate: "冀A00003", registeredOn: "2021-03-01", deregisteredOn: null },
        ],
        onD: [{ plate: "冀A00003" }],
      },
    ]);
  });

  it("refuses a malformed region argument with BAD_USER_INPUT naming it", async () => {
    for (const region of ["11", "1100000", "999999", ""]) {
      const result = await inject<Entities<unknown>>(
        app,
        /* GraphQL */ `
          query ($representations: [_Any!]!, $region: ID) {
            _entities(representations: $representations) {
              ... on Person { ownsVehicle(region: $region, on: "${D}") }
            }
          }
        `,
        { representations: [person(licensedFromD)], region },
      );
      expect(result.data?._entities).toEqual([null]);
      expect(result.errors).toHaveLength(1);
      expect(result.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        argument: "region",
        value: region,
      });
    }
  });
});
