/**
 * The compiled plan executor (gateway/execution) against `@apollo/gateway`'s own executor: two
 * gateways over the same six departments, one with `executor: "apollo"`, every request asked of
 * both, the answers (data and errors, in order) compared as JSON — including partial answers
 * when a department is down and a null that must bubble up to its nullable parent.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEPARTMENTS, type Department } from "../../common/departments.ts";
import { buildGateway } from "../../gateway/app.ts";
import type { DepartmentEndpoint } from "../../gateway/config.ts";
import {
  HEBEI_COMPANY,
  LI_NA,
  PUBLISHED_EXAMPLE,
  WANG_QIANG,
  writeFixtures,
  ZHANG_COMPANY,
  ZHANG_LAO,
  ZHANG_WEI,
  ZHANG_XIAOMING,
} from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { type Platform, postGraphQL, startPlatform, tearDown } from "../platform.ts";

let platform: Platform;
let apollo: FastifyInstance;
let apolloUrl: string;
let data: ReturnType<typeof tempDataDir>;
let apolloData: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  data = tempDataDir();
  apolloData = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir, { config: { executor: "compiled" } });
  const departments = {} as Record<Department, DepartmentEndpoint>;
  for (const department of DEPARTMENTS) {
    const address = platform.departments[department].addresses()[0] as { port: number };
    departments[department] = {
      url: `http://127.0.0.1:${address.port}/graphql`,
      timeoutMs: 2000,
    };
  }
  // Its own data directory: its own audit ledger and proof keys, the same departments.
  apollo = await buildGateway({
    logger: false,
    config: { executor: "apollo", dataDir: apolloData.dir, breakerResetMs: 500, departments },
  });
  apolloUrl = `${await apollo.listen({ port: 0, host: "127.0.0.1" })}/graphql`;
});

afterAll(async () => {
  await apollo?.close();
  await tearDown(platform, data.remove, apolloData.remove);
});

/**
 * Asks both gateways; the answers must be the same, byte for byte once serialised. With
 * `errorsInAnyOrder`, errors are compared as a set: fetches that fail at the same time report in
 * the order they happen to fail, and the compiled executor sends a lookup's entity fetches
 * earlier than Apollo's does (see gateway/execution/early-lookups.ts).
 */
async function same(
  query: string,
  variables?: Record<string, unknown>,
  { errorsInAnyOrder = false, errorsExpected = false } = {},
) {
  const compiled = await postGraphQL(platform.url, query, variables);
  const reference = await postGraphQL(apolloUrl, query, variables);
  // Two gateways failing alike (a validation error, a refusal) are the same, and prove nothing.
  expect(compiled.status).toBe(200);
  expect(compiled.body.data).toBeTruthy();
  if (!errorsExpected) expect(compiled.body.errors).toBeUndefined();
  const comparable = (answer: typeof compiled) => {
    const errors = answer.body.errors as unknown[] | undefined;
    if (!errorsInAnyOrder || !errors) return JSON.stringify(answer);
    const sorted = errors.map((error) => JSON.stringify(error)).sort();
    return JSON.stringify({ ...answer, body: { ...answer.body, errors: sorted } });
  };
  expect(comparable(compiled)).toBe(comparable(reference));
  return compiled.body;
}

const D = "2026-11-01";

describe("the compiled executor answers as Apollo's does", () => {
  it("one person's facts from six departments", async () => {
    const body = await same(
      `query PersonFacts($id: ID!) {
        person(id: $id) {
          id name hukouRegion { code name } hasValidDriverLicense(on: "${D}")
          maritalStatus(on: "${D}") legalRepresentativeOf { uscc name }
          consecutiveInsuredMonths(region: "110000", upTo: "2026-10", paidBy: "${D}")
          incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025, paidBy: "${D}")
        }
      }`,
      { id: ZHANG_WEI },
    );
    expect((body.data as { person: { name: string } }).person.name).toBe("张伟");
  });

  it("lists with unknown subjects, aliases, __typename at every level, repeated keys", async () => {
    const body = await same(
      `query Lottery($ids: [ID!]!) {
        __typename
        applicants: people(ids: $ids) {
          __typename id alive kind: __typename
          ageOn(on: "${D}") beijing: hukouWithin(region: "110000")
          licence: hasValidDriverLicense(on: "${D}")
          ownsVehicle(kind: PASSENGER_CAR, region: "110000", on: "${D}")
          insuredMonths(region: "110000", from: "2021-10", to: "2026-10", paidBy: "${D}")
          id
        }
      }`,
      { ids: [WANG_QIANG, "110105200001010016", ZHANG_LAO, PUBLISHED_EXAMPLE, ZHANG_WEI] },
    );
    const applicants = (body.data as { applicants: unknown[] }).applicants;
    expect(applicants).toHaveLength(5);
    expect(applicants[1]).toBeNull();
  });

  it("references across departments, fragments and inline fragments", async () => {
    await same(
      `fragment Who on Person { id name }
      query Family {
        person(id: "${ZHANG_WEI}") {
          ...Who
          spouse(on: "${D}") { ...Who ... on Person { ageOn(on: "${D}") } }
          isChildOf(parentId: "${ZHANG_LAO}")
          legalRepresentativeOf {
            uscc legalRepresentative { ...Who } vatTotal(year: 2025) vehicleCount(on: "${D}")
          }
        }
        child: person(id: "${ZHANG_XIAOMING}") { isChildOf(parentId: "${ZHANG_WEI}") ageOn(on: "${D}") }
        wife: person(id: "${LI_NA}") { ...Who }
      }`,
    );
  });

  it("organizations, with a null for an unknown one", async () => {
    await same(
      `{ organizations(usccs: ["${ZHANG_COMPANY}", "${HEBEI_COMPANY}", "91110000MA0000000H"]) {
          uscc status region { code name } ownsVehicle(on: "${D}") vatTotal(year: 2025, region: "110000")
        } }`,
    );
  });

  it("@skip and @include, by variable, default and literal", async () => {
    const query = `query Conditional($withLicence: Boolean!, $withName: Boolean = true) {
      person(id: "${ZHANG_WEI}") {
        id
        name @include(if: $withName)
        hasValidDriverLicense(on: "${D}") @include(if: $withLicence)
        maritalStatus(on: "${D}") @skip(if: true)
        ... on Person @skip(if: $withLicence) { hukouRegion { code } }
      }
    }`;
    for (const variables of [
      { withLicence: true },
      { withLicence: false },
      { withLicence: true, withName: false },
    ]) {
      await same(query, variables);
    }
    // A default decides a condition of the plan itself (a field from another department, a
    // whole root field) when the request leaves the variable out.
    const defaulted = `query Defaulted($withLicence: Boolean = true, $withPerson: Boolean = true) {
      person(id: "${ZHANG_WEI}") @include(if: $withPerson) {
        name
        hasValidDriverLicense(on: "${D}") @include(if: $withLicence)
      }
    }`;
    const body = await same(defaulted, {});
    expect(body.data).toEqual({ person: { name: "张伟", hasValidDriverLicense: true } });
    await same(defaulted, { withLicence: false });
    await same(defaulted, { withPerson: false });
  });

  it("introspection next to data is left to Apollo and still answered", async () => {
    const body = await same(
      `{ __schema { queryType { name } } person(id: "${ZHANG_WEI}") { name } }`,
    );
    expect((body.data as { person: { name: string } }).person.name).toBe("张伟");
  });

  it("a department that is down: same partial data, same errors, same bubbling", async () => {
    await platform.stopDepartment("traffic");
    const body = await same(
      `query($ids: [ID!]!) {
        person(id: "${ZHANG_WEI}") { name maritalStatus(on: "${D}") }
        cars: person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: "${D}") }
        people(ids: $ids) { id hasValidDriverLicense(on: "${D}") }
        organization(uscc: "${ZHANG_COMPANY}") { uscc vehicleCount(on: "${D}") }
      }`,
      { ids: [ZHANG_WEI, LI_NA] },
      { errorsInAnyOrder: true, errorsExpected: true },
    );
    expect((body.data as { cars: unknown }).cars).toBeNull();
    expect(body.errors?.some((error) => error.extensions?.code === "DEPARTMENT_UNAVAILABLE")).toBe(
      true,
    );
  });
});
