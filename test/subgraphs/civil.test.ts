import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setClock } from "../../common/clock.ts";
import { makePersonId } from "../../common/ids.ts";
import { buildCivilSubgraph } from "../../subgraphs/civil/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

const person = (sequence: number) => makePersonId("110105", "1970-01-01", sequence);

const neverMarried = person(1);
const husband = person(3);
const wife = person(4);
const divorcedA = person(5);
const divorcedB = person(6);
const widow = person(8);
const lateHusband = person(7);
const remarried = person(9);
const firstWife = person(10);
const secondWife = person(12);
const widowedThenDivorced = person(11);
const firstSpouse = person(14);
const secondSpouse = person(16);

const TODAY = "2026-11-01";

const marriage = (
  partyA: string,
  partyB: string,
  registeredOn: string,
  dissolved?: { on: string; by: "DIVORCE" | "DEATH" },
) => ({
  kind: "marriage",
  partyA,
  partyB,
  registeredOn,
  dissolvedOn: dissolved?.on,
  dissolution: dissolved?.by,
});

const entities = /* GraphQL */ `
  query ($representations: [_Any!]!, $on: Date) {
    _entities(representations: $representations) {
      ... on Person { id maritalStatus(on: $on) spouse(on: $on) { id } }
    }
  }
`;

interface PersonFacts {
  id: string;
  maritalStatus: string;
  spouse: { id: string } | null;
}

describe("civil subgraph", () => {
  const data = tempDataDir();
  let app: FastifyInstance;

  async function factsOf(ids: string[], on?: string): Promise<PersonFacts[]> {
    const result = await inject<{ _entities: PersonFacts[] }>(app, entities, {
      representations: ids.map((id) => ({ __typename: "Person", id })),
      on,
    });
    expect(result.errors).toBeUndefined();
    return result.data?._entities ?? [];
  }

  async function statusOn(id: string, on?: string): Promise<string | undefined> {
    return (await factsOf([id], on))[0]?.maritalStatus;
  }

  beforeAll(async () => {
    setClock(`${TODAY}T09:00:00+08:00`);
    writeRecords("civil", data.dir, [
      marriage(husband, wife, "2015-05-20"),
      // The same divorce exported first as a registration, then (below) with its dissolution.
      marriage(divorcedA, divorcedB, "2010-08-08"),
      marriage(lateHusband, widow, "2000-01-01", { on: "2020-04-04", by: "DEATH" }),
      marriage(remarried, firstWife, "2005-10-01", { on: "2012-06-30", by: "DIVORCE" }),
      marriage(secondWife, remarried, "2014-02-14"),
      marriage(widowedThenDivorced, firstSpouse, "1990-03-03", { on: "2000-07-07", by: "DEATH" }),
      marriage(widowedThenDivorced, secondSpouse, "2002-02-02", {
        on: "2010-10-10",
        by: "DIVORCE",
      }),
    ]);
    // Parties swapped: the same marriage, now dissolved, must update rather than add a record.
    writeRecords("civil", data.dir, [
      marriage(divorcedB, divorcedA, "2010-08-08", { on: "2018-03-01", by: "DIVORCE" }),
      marriage(wife, husband, "2015-05-20"),
    ]);
    app = await buildCivilSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
  });

  afterAll(async () => {
    await app?.close();
    data.remove();
    setClock(null);
  });

  it("knows a person never married as UNMARRIED with no spouse", async () => {
    expect(await factsOf([neverMarried])).toEqual([
      { id: neverMarried, maritalStatus: "UNMARRIED", spouse: null },
    ]);
  });

  it("knows both parties of an undissolved marriage as MARRIED to each other", async () => {
    expect(await factsOf([husband, wife])).toEqual([
      { id: husband, maritalStatus: "MARRIED", spouse: { id: wife } },
      { id: wife, maritalStatus: "MARRIED", spouse: { id: husband } },
    ]);
  });

  it("ignores a marriage registered after the day asked about", async () => {
    expect(await factsOf([husband], "2015-05-19")).toEqual([
      { id: husband, maritalStatus: "UNMARRIED", spouse: null },
    ]);
    expect(await statusOn(husband, "2015-05-20")).toBe("MARRIED");
  });

  it("knows a divorce from its date, and the marriage before it", async () => {
    expect(await factsOf([divorcedA, divorcedB])).toEqual([
      { id: divorcedA, maritalStatus: "DIVORCED", spouse: null },
      { id: divorcedB, maritalStatus: "DIVORCED", spouse: null },
    ]);
    expect(await factsOf([divorcedA], "2018-02-28")).toEqual([
      { id: divorcedA, maritalStatus: "MARRIED", spouse: { id: divorcedB } },
    ]);
    expect(await statusOn(divorcedA, "2018-03-01")).toBe("DIVORCED");
  });

  it("knows a marriage ended by death as WIDOWED", async () => {
    expect(await statusOn(widow)).toBe("WIDOWED");
    expect(await statusOn(widow, "2020-04-03")).toBe("MARRIED");
  });

  it("follows a remarriage after divorce", async () => {
    expect(await statusOn(remarried)).toBe("MARRIED");
    expect(await statusOn(remarried, "2013-01-01")).toBe("DIVORCED");
    expect(await statusOn(remarried, "2005-09-30")).toBe("UNMARRIED");
    expect((await factsOf([remarried], "2010-01-01"))[0]?.spouse).toEqual({ id: firstWife });
    expect((await factsOf([remarried], "2013-01-01"))[0]?.spouse).toBeNull();
    expect((await factsOf([remarried]))[0]?.spouse).toEqual({ id: secondWife });
    expect(await statusOn(firstWife)).toBe("DIVORCED");
  });

  it("takes the status from the latest dissolved marriage", async () => {
    expect(await statusOn(widowedThenDivorced)).toBe("DIVORCED");
    expect(await statusOn(widowedThenDivorced, "2005-05-05")).toBe("MARRIED");
    expect(await statusOn(widowedThenDivorced, "2001-01-01")).toBe("WIDOWED");
  });

  it("answers a batch of persons in the order asked", async () => {
    const facts = await factsOf([widow, neverMarried, remarried, firstWife], "2010-01-01");
    expect(facts.map((fact) => [fact.id, fact.maritalStatus, fact.spouse?.id ?? null])).toEqual([
      [widow, "MARRIED", lateHusband],
      [neverMarried, "UNMARRIED", null],
      [remarried, "MARRIED", firstWife],
      [firstWife, "MARRIED", remarried],
    ]);
  });

  it("lists every marriage, one record for a marriage imported with parties swapped", async () => {
    const result = await inject(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) {
          ... on Person { marriages { spouse { id } registeredOn dissolvedOn dissolution } }
        }
      }`,
      {
        representations: [divorcedA, divorcedB, husband, remarried, neverMarried].map((id) => ({
          __typename: "Person",
          id,
        })),
      },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      _entities: [
        {
          marriages: [
            {
              spouse: { id: divorcedB },
              registeredOn: "2010-08-08",
              dissolvedOn: "2018-03-01",
              dissolution: "DIVORCE",
            },
          ],
        },
        {
          marriages: [
            {
              spouse: { id: divorcedA },
              registeredOn: "2010-08-08",
              dissolvedOn: "2018-03-01",
              dissolution: "DIVORCE",
            },
          ],
        },
        {
          marriages: [
            {
              spouse: { id: wife },
              registeredOn: "2015-05-20",
              dissolvedOn: null,
              dissolution: null,
            },
          ],
        },
        {
          marriages: [
            {
              spouse: { id: firstWife },
              registeredOn: "2005-10-01",
              dissolvedOn: "2012-06-30",
              dissolution: "DIVORCE",
            },
            {
              spouse: { id: secondWife },
              registeredOn: "2014-02-14",
              dissolvedOn: null,
              dissolution: null,
            },
          ],
        },
        { marriages: [] },
      ],
    });
  });
});
