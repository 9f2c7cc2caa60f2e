/**
 * Early lookups (gateway/execution/early-lookups.ts): a lookup's entity fetches go out beside the
 * household register's fetch, and their answers are used only when the register confirms the
 * subject. Two gateways over the same departments, one with early lookups and one without, reach
 * the register through a relay that holds its answers back and traffic through one that notes
 * when each request arrives, so the order of the calls is seen on the wire.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEPARTMENTS, type Department } from "../../common/departments.ts";
import { makePersonId } from "../../common/ids.ts";
import { buildGateway } from "../../gateway/app.ts";
import type { DepartmentEndpoint } from "../../gateway/config.ts";
import { LI_NA, PUBLISHED_EXAMPLE, WANG_QIANG, writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { journalRecords, tempDataDir } from "../helpers.ts";
import { type Platform, postGraphQL, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";

const D = "2026-11-01";
/** A well-formed identity number nobody in the register holds. */
const NOBODY = makePersonId("110108", "2001-02-03", 517);

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
const gateways: Record<"early" | "planned", { app: FastifyInstance; url: string; dir: string }> =
  {} as never;
const relays: Record<"early" | "planned", { hukou: Relay; traffic: Relay }> = {} as never;
const dirs: Array<ReturnType<typeof tempDataDir>> = [];

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir);
  for (const mode of ["early", "planned"] as const) {
    const direct = {} as Record<Department, DepartmentEndpoint>;
    for (const department of DEPARTMENTS) {
      const address = platform.departments[department].addresses()[0] as { port: number };
      direct[department] = { url: `http://127.0.0.1:${address.port}/graphql`, timeoutMs: 2000 };
    }
    const hukou = new Relay(direct.hukou.url, 60);
    const traffic = new Relay(direct.traffic.url);
    await hukou.start();
    await traffic.start();
    relays[mode] = { hukou, traffic };
    const dir = tempDataDir();
    dirs.push(dir);
    const app = await buildGateway({
      logger: false,
      config: {
        dataDir: dir.dir,
        earlyLookups: mode === "early",
        departments: {
          ...direct,
          hukou: { url: hukou.url, timeoutMs: 2000 },
          traffic: { url: traffic.url, timeoutMs: 2000 },
        },
      },
    });
    gateways[mode] = {
      app,
      dir: dir.dir,
      url: `${await app.listen({ port: 0, host: "127.0.0.1" })}/graphql`,
    };
  }
});

afterAll(async () => {
  for (const mode of ["early", "planned"] as const) {
    await gateways[mode]?.app.close();
    await relays[mode]?.hukou.close();
    await relays[mode]?.traffic.close();
  }
  await tearDown(platform, data.remove, () => {
    for (const dir of dirs) dir.remove();
  });
});

async function ask(mode: "early" | "planned", query: string, variables?: Record<string, unknown>) {
  for (const relay of Object.values(relays[mode])) relay.clear();
  return (await postGraphQL(gateways[mode].url, query, variables)).body;
}

/** The departments the journal names for the last record of `operationName`. */
function recordedDepartments(mode: "early" | "planned", operationName: string) {
  const records = journalRecords(gateways[mode].dir).filter(
    (record) => record.operationName === operationName,
  );
  return records.at(-1)?.departments;
}

const PERSON = `query Person($id: ID!) {
  person(id: $id) { id name hasValidDriverLicense(on: "${D}") maritalStatus(on: "${D}") }
}`;

describe("a lookup's entity fetches", () => {
  it("go out before the register answers, and the answer is the planned one", async () => {
    const early = await ask("early", PERSON, { id: ZHANG_WEI });
    const { hukou, traffic } = relays.early;
    expect(traffic.arrivals).toHaveLength(1);
    expect(hukou.releases).toHaveLength(1);
    expect(traffic.arrivals[0]?.at).toBeLessThan(hukou.releases[0] as number);

    const planned = await ask("planned", PERSON, { id: ZHANG_WEI });
    expect(relays.planned.traffic.arrivals[0]?.at).toBeGreaterThan(
      relays.planned.hukou.releases[0] as number,
    );
    expect(early).toEqual(planned);
    expect(early).toEqual({
      data: {
        person: {
          id: ZHANG_WEI,
          name: "张伟",
          hasValidDriverLicense: true,
          maritalStatus: "MARRIED",
        },
      },
    });
    expect(recordedDepartments("early", "Person")).toEqual(["civil", "hukou", "traffic"]);
  });

  it("are dropped for a number nobody holds: the record names only the register", async () => {
    const early = await ask("early", PERSON, { id: NOBODY });
    expect(early).toEqual({ data: { person: null } });
    // Traffic was asked early, and its answer was not used.
    expect(relays.early.traffic.arrivals).toHaveLength(1);
    expect(recordedDepartments("early", "Person")).toEqual(["hukou"]);
    expect(await ask("planned", PERSON, { id: NOBODY })).toEqual(early);
    expect(relays.planned.traffic.arrivals).toHaveLength(0);

    const nobodies = [NOBODY, makePersonId("110108", "2001-02-03", 525)];
    const list = await ask(
      "early",
      `query Nobodies($ids: [ID!]!) { people(ids: $ids) { id hasValidDriverLicense(on: "${D}") } }`,
      { ids: nobodies },
    );
    expect(list).toEqual({ data: { people: [null, null] } });
    expect(relays.early.traffic.arrivals).toHaveLength(1);
    expect(recordedDepartments("early", "Nobodies")).toEqual(["hukou"]);
  });

  it("are asked again as planned when the register writes the number differently", async () => {
    // The register answers with the upper-case check character, so the early representation
    // (lower case) is not the one the plan would send.
    const id = PUBLISHED_EXAMPLE.toLowerCase();
    const early = await ask("early", PERSON, { id });
    const bodies = relays.early.traffic.arrivals.map((arrival) => JSON.parse(arrival.body));
    expect(bodies.map((body) => body.variables.representations)).toEqual([
      [{ __typename: "Person", id }],
      [{ __typename: "Person", id: PUBLISHED_EXAMPLE }],
    ]);
    expect(early).toEqual(await ask("planned", PERSON, { id }));
    expect(early.data).toMatchObject({ person: { id: PUBLISHED_EXAMPLE } });
  });

  it("send an id written in the query as the department will read it, every digit kept", async () => {
    // The planner prints an ID of digits as an Int literal, person(id:110108198707081026): read
    // as a number it became 110108198707081020, another person's number, and the early fetch
    // was wasted on it before the planned one went out.
    const person = await ask(
      "early",
      `query Literal { person(id: "${LI_NA}") { id hasValidDriverLicense(on: "${D}") } }`,
    );
    expect(person.errors).toBeUndefined();
    const asked = relays.early.traffic.arrivals.map(
      (arrival) => JSON.parse(arrival.body).variables.representations,
    );
    expect(asked).toEqual([[{ __typename: "Person", id: LI_NA }]]);
    expect(relays.early.traffic.arrivals[0]?.at).toBeLessThan(
      relays.early.hukou.releases[0] as number,
    );
    const list = await ask(
      "early",
      `query Literals { people(ids: ["${LI_NA}", "${ZHANG_WEI}"]) { id hasValidDriverLicense(on: "${D}") } }`,
    );
    expect(list.errors).toBeUndefined();
    expect(
      relays.early.traffic.arrivals.map(
        (arrival) => JSON.parse(arrival.body).variables.representations,
      ),
    ).toEqual([
      [
        { __typename: "Person", id: LI_NA },
        { __typename: "Person", id: ZHANG_WEI },
      ],
    ]);
  });

  it("over a list keep each answer with its subject, nulls and repeats included", async () => {
    const query = `query People($ids: [ID!]!) {
      people(ids: $ids) { id hasValidDriverLicense(on: "${D}") ownsVehicle(kind: PASSENGER_CAR, region: "110000", on: "${D}") }
    }`;
    const ids = [WANG_QIANG, NOBODY, ZHANG_WEI, LI_NA, ZHANG_WEI];
    const early = await ask("early", query, { ids });
    expect(relays.early.traffic.arrivals).toHaveLength(1);
    expect(relays.early.traffic.arrivals[0]?.at).toBeLessThan(
      relays.early.hukou.releases[0] as number,
    );
    expect(early).toEqual(await ask("planned", query, { ids }));
    const people = early.data?.people as Array<{ id: string; ownsVehicle: boolean } | null>;
    expect(people.map((person) => person?.id ?? null)).toEqual([
      WANG_QIANG,
      null,
      ZHANG_WEI,
      LI_NA,
      ZHANG_WEI,
    ]);
    expect(people[2]?.ownsVehicle).toBe(true);
    expect(people[4]?.ownsVehicle).toBe(true);
  });

  it("report a department that is down at the subject's path, as planned", async () => {
    await relays.early.traffic.close();
    await relays.planned.traffic.close();
    const early = await ask("early", PERSON, { id: ZHANG_WEI });
    expect(early).toEqual(await ask("planned", PERSON, { id: ZHANG_WEI }));
    expect(early.errors).toEqual([
      expect.objectContaining({
        path: ["person"],
        extensions: expect.objectContaining({
          code: "DEPARTMENT_UNAVAILABLE",
          department: "traffic",
        }),
      }),
    ]);
    // The licence is a non-null fact, so its absence nulls the person, as in any plan.
    expect(early.data).toEqual({ person: null });
    expect(recordedDepartments("early", "Person")).toEqual(["civil", "hukou"]);
  });
});
