/**
 * The household register's subgraph. A batch (`people(ids:)`, `_entities`) is answered from one
 * statement per fact, synchronously; one person (`person(id:)`) through a DataLoader. Both must
 * give the same answers, whatever the batch holds.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId } from "../../common/ids.ts";
import { buildHukouSubgraph } from "../../subgraphs/hukou/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

const D = "2026-06-15";

const beijinger = makePersonId("110105", "1985-03-12", 11);
const migrant = makePersonId("130102", "1990-01-20", 21);
const worker = makePersonId("370113", "1995-02-03", 31);
const child = makePersonId("110105", "2012-05-01", 41);
const deceased = makePersonId("110101", "1950-02-02", 51);
// An identity number whose check character is X, asked for with a lower-case x.
const withX = (() => {
  for (let sequence = 1; ; sequence++) {
    const id = makePersonId("110108", "1979-11-11", sequence);
    if (id.endsWith("X")) return id;
  }
})();
const unknown = makePersonId("120101", "2000-02-29", 61);

const genderOf = (id: string) => ((id.charCodeAt(16) - 48) % 2 === 1 ? "M" : "F");
const person = (id: string, fields: Record<string, unknown>) => ({
  kind: "person",
  id,
  gender: genderOf(id),
  birthDate: `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`,
  status: "ALIVE",
  ...fields,
});

const records = [
  person(beijinger, { name: "张伟", hukouRegion: "110105", hukouAddress: "朝阳区建国路1号" }),
  person(migrant, { name: "王强", hukouRegion: "130102", ethnicity: "汉族" }),
  person(worker, { name: "刘洋", hukouRegion: "370113" }),
  person(child, { name: "张小明", hukouRegion: "110105" }),
  person(deceased, {
    name: "张老",
    hukouRegion: "110101",
    status: "DECEASED",
    diedOn: "2020-06-30",
  }),
  person(withX, { name: "赵敏", hukouRegion: "110108" }),
  { kind: "parentage", parentId: beijinger, childId: child },
  { kind: "parentage", parentId: deceased, childId: beijinger },
  // Recorded out of number order: a person's permits are listed in the order they were recorded.
  {
    kind: "residencePermit",
    personId: migrant,
    number: "JZZ110000202000009",
    permitKind: "RESIDENCE",
    region: "110106",
    validFrom: D,
    validTo: "2028-02-29",
  },
  {
    kind: "residencePermit",
    personId: migrant,
    number: "JZZ110000201800001",
    permitKind: "RESIDENCE",
    region: "110106",
    validFrom: "2018-03-01",
    validTo: "2026-06-14",
  },
  {
    kind: "residencePermit",
    personId: worker,
    number: "GZJZ2024000123",
    permitKind: "WORK_RESIDENCE",
    region: "110108",
    validFrom: "2024-01-01",
    validTo: D,
  },
];

const EVERY_FACT = /* GraphQL */ `
  id
  name
  gender
  birthDate
  ageOn(on: "${D}")
  ethnicity
  alive
  diedOn
  hukouRegion { code name province }
  hukouAddress
  beijingHukou: hukouWithin(region: "110000")
  chaoyang: hukouWithin(region: "110105")
  childOfBeijinger: isChildOf(parentId: "${beijinger}")
  workResidencePermit: hasValidResidencePermit(kind: WORK_RESIDENCE, region: "110000", on: "${D}")
  residencePermit: hasValidResidencePermit(kind: RESIDENCE, region: "110000", on: "${D}")
  residencePermitDayAfter: hasValidResidencePermit(kind: RESIDENCE, on: "2028-03-01")
  residencePermits { number kind region { code name } validFrom validTo }
  validPermits: residencePermits(validOn: "${D}") { number }
`;

type Person = Record<string, unknown> & { id: string };

describe("hukou subgraph", () => {
  const data = tempDataDir();
  let app: FastifyInstance;
  const asked = [
    deceased,
    unknown,
    migrant,
    withX.toLowerCase(),
    beijinger,
    worker,
    child,
    migrant,
  ];

  beforeAll(async () => {
    writeRecords("hukou", data.dir, records);
    app = await buildHukouSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
  });

  afterAll(async () => {
    await app?.close();
    data.remove();
  });

  it("answers people(ids:) in the order of ids, null for an unknown person, repeats included", async () => {
    const result = await inject<{ people: Array<Person | null> }>(
      app,
      `query ($ids: [ID!]!) { people(ids: $ids) { id alive ageOn(on: "${D}") } }`,
      { ids: asked },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.people).toEqual([
      { id: deceased, alive: false, ageOn: 76 },
      null,
      { id: migrant, alive: true, ageOn: 36 },
      { id: withX, alive: true, ageOn: 46 },
      { id: beijinger, alive: true, ageOn: 41 },
      { id: worker, alive: true, ageOn: 31 },
      { id: child, alive: true, ageOn: 14 },
      { id: migrant, alive: true, ageOn: 36 },
    ]);
  });

  it("gives a batch every fact exactly as it gives one person at a time", async () => {
    const batch = await inject<{ people: Array<Person | null> }>(
      app,
      `query ($ids: [ID!]!) { people(ids: $ids) { ${EVERY_FACT} } }`,
      { ids: asked },
    );
    expect(batch.errors).toBeUndefined();
    const oneByOne = await Promise.all(
      asked.map(async (id) => {
        const single = await inject<{ person: Person | null }>(
          app,
          `query ($id: ID!) { person(id: $id) { ${EVERY_FACT} } }`,
          { id },
        );
        expect(single.errors).toBeUndefined();
        return single.data?.person;
      }),
    );
    expect(batch.data?.people).toEqual(oneByOne);
    const migrantFacts = batch.data?.people[2];
    expect(migrantFacts).toMatchObject({
      name: "王强",
      ethnicity: "汉族",
      hukouAddress: null,
      beijingHukou: false,
      residencePermit: true,
      residencePermitDayAfter: false,
      residencePermits: [
        { number: "JZZ110000202000009", validFrom: D },
        { number: "JZZ110000201800001", validTo: "2026-06-14" },
      ],
      validPermits: [{ number: "JZZ110000202000009" }],
    });
    expect(batch.data?.people[5]).toMatchObject({
      workResidencePermit: true,
      residencePermit: false,
    });
    expect(batch.data?.people[6]).toMatchObject({ childOfBeijinger: true, chaoyang: true });
  });

  it("answers _entities and two aliases of people(ids: $ids) like people(ids:)", async () => {
    const known = asked.filter((id) => id !== unknown);
    const people = await inject<{ people: Person[] }>(
      app,
      `query ($ids: [ID!]!) { people(ids: $ids) { ${EVERY_FACT} } }`,
      { ids: known },
    );
    const entities = await inject<{ _entities: Person[] }>(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) { ... on Person { ${EVERY_FACT} } }
      }`,
      { representations: known.map((id) => ({ __typename: "Person", id: id.toUpperCase() })) },
    );
    expect(entities.errors).toBeUndefined();
    expect(entities.data?._entities).toEqual(people.data?.people);

    // As the gateway's query plans ask: the facts under one alias, the keys under another.
    const aliased = await inject<{ facts: Person[]; keys: Person[] }>(
      app,
      `query ($ids: [ID!]!) {
        facts: people(ids: $ids) { alive beijingHukou: hukouWithin(region: "110000") }
        keys: people(ids: $ids) { __typename id }
      }`,
      { ids: known },
    );
    expect(aliased.errors).toBeUndefined();
    expect(aliased.data?.keys).toEqual(
      known.map((id) => ({ __typename: "Person", id: id.toUpperCase() })),
    );
    expect(aliased.data?.facts.map((facts) => facts.beijingHukou)).toEqual(
      people.data?.people.map((facts) => facts.beijingHukou),
    );
  });

  it("refuses an empty region, naming the argument; an age on a day before birth is 0", async () => {
    const permit = await inject(
      app,
      `{ person(id: "${worker}") { hasValidResidencePermit(kind: WORK_RESIDENCE, region: "") } }`,
    );
    expect(permit.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "region",
    });
    // Not yet born: under every age limit, and not an error that would null the whole person.
    const unborn = await inject(
      app,
      `{ person(id: "${beijinger}") { before: ageOn(on: "1900-01-01") born: ageOn(on: "1985-03-12") } }`,
    );
    expect(unborn.data).toEqual({ person: { before: 0, born: 0 } });
    expect(unborn.errors).toBeUndefined();
  });

  it("refuses a malformed id in the list before reading anything, naming its position", async () => {
    const result = await inject(app, "query ($ids: [ID!]!) { people(ids: $ids) { id } }", {
      ids: [beijinger, "110105198503121016"],
    });
    expect(result.data).toBeNull();
    expect(result.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "ids[1]",
    });
  });
});
