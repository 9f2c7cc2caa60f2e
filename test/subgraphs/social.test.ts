import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId, makeUscc } from "../../common/ids.ts";
import { addMonths, monthIndex } from "../../common/values.ts";
import { buildSocialSubgraph } from "../../subgraphs/social/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

// Application date D = 2026-11-01: the 60 months are 2021-11 … 2026-10.
const D = "2026-11-01";
const FIRST = "2021-11";
const LAST = "2026-10";

const employer = makeUscc("110105", "MA01HRB1X");
const steady = makePersonId("110105", "1985-03-14", 11);
const wider = makePersonId("110105", "1986-04-15", 13);
const outsideOnly = makePersonId("110105", "1987-05-16", 15);
const gap = makePersonId("110105", "1988-06-17", 17);
const backPaid = makePersonId("110105", "1989-07-18", 19);
const hebei = makePersonId("130102", "1990-08-19", 21);
const tianjinMonth = makePersonId("120101", "1991-09-20", 23);
const selfEmployed = makePersonId("110105", "1992-10-21", 27);
const unknown = makePersonId("310101", "1992-10-21", 25);

/** Every month from `from` to `to`, both included. */
function months(from: string, to: string): string[] {
  const count = monthIndex(to) - monthIndex(from) + 1;
  return Array.from({ length: count }, (_, i) => addMonths(from, i));
}

/** A contribution paid on time (the 15th of its month) unless `paidOn` says otherwise. */
function contribution(personId: string, month: string, region = "110105", paidOn?: string) {
  return {
    kind: "contribution",
    personId,
    month,
    region,
    employer,
    paidOn: paidOn ?? `${month}-15`,
  };
}

const BACK_PAID_BEFORE = "2023-05";
const BACK_PAID_ON = "2023-06";
const BACK_PAID_AFTER = "2023-07";
const backPaidOn: Record<string, string> = {
  [BACK_PAID_BEFORE]: "2026-10-31",
  [BACK_PAID_ON]: D,
  [BACK_PAID_AFTER]: "2026-11-02",
};

const records = [
  ...months(FIRST, LAST).map((m) => contribution(steady, m)),
  ...months("2021-10", "2026-11").map((m) => contribution(wider, m)),
  contribution(outsideOnly, "2021-10"),
  contribution(outsideOnly, "2026-11"),
  ...months(FIRST, LAST)
    .filter((m) => m !== "2024-03")
    .map((m) => contribution(gap, m)),
  ...months(FIRST, LAST).map((m) => contribution(backPaid, m, "110108", backPaidOn[m])),
  ...months(FIRST, LAST).map((m) => contribution(hebei, m, "130102")),
  ...months(FIRST, LAST).map((m) =>
    contribution(tianjinMonth, m, m === "2025-12" ? "120101" : "110101"),
  ),
  // A self-employed person's contribution names no employer.
  {
    kind: "contribution",
    personId: selfEmployed,
    month: "2020-01",
    region: "110105",
    paidOn: "2020-01-20",
  },
];

const LOTTERY_FACTS = /* GraphQL */ `
  query ($representations: [_Any!]!, $paidBy: Date) {
    _entities(representations: $representations) {
      ... on Person {
        id
        insuredMonths(region: "110000", from: "${FIRST}", to: "${LAST}", paidBy: $paidBy)
        consecutiveInsuredMonths(region: "110000", upTo: "${LAST}", paidBy: $paidBy)
      }
    }
  }
`;

interface Facts {
  id: string;
  insuredMonths: number;
  consecutiveInsuredMonths: number;
}

let app: FastifyInstance;
const data = tempDataDir();

async function factsOf(ids: string[], paidBy: string | null = D): Promise<Facts[]> {
  const result = await inject<{ _entities: Facts[] }>(app, LOTTERY_FACTS, {
    representations: ids.map((id) => ({ __typename: "Person", id })),
    paidBy,
  });
  expect(result.errors).toBeUndefined();
  return result.data?._entities ?? [];
}

async function factOf(id: string, paidBy: string | null = D): Promise<Facts> {
  const [facts] = await factsOf([id], paidBy);
  if (!facts) throw new Error(`no facts for ${id}`);
  return facts;
}

beforeAll(async () => {
  writeRecords("social", data.dir, records);
  app = await buildSocialSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
});

afterAll(async () => {
  await app?.close();
  data.remove();
});

describe("the 60-month window of the Beijing car lottery (D = 2026-11-01)", () => {
  it("counts exactly the months 2021-11 … 2026-10", async () => {
    expect(await factOf(steady)).toEqual({
      id: steady,
      insuredMonths: 60,
      consecutiveInsuredMonths: 60,
    });
  });

  it("does not count 2021-10 or 2026-11 in the window", async () => {
    const facts = await factOf(wider);
    expect(facts.insuredMonths).toBe(60);
    // The run itself goes on before the window: 2021-10 … 2026-10.
    expect(facts.consecutiveInsuredMonths).toBe(61);
    expect(await factOf(outsideOnly)).toMatchObject({
      insuredMonths: 0,
      consecutiveInsuredMonths: 0,
    });
  });

  it("lets a gap break the consecutive run", async () => {
    const facts = await factOf(gap);
    expect(facts.insuredMonths).toBe(59);
    // 2024-04 … 2026-10: 9 + 12 + 10 months.
    expect(facts.consecutiveInsuredMonths).toBe(31);
  });

  it("is 0 when the month it ends with is not insured", async () => {
    const result = await inject<{ _entities: Array<{ consecutiveInsuredMonths: number }> }>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              consecutiveInsuredMonths(region: "110000", upTo: "2026-11")
            }
          }
        }
      `,
      { representations: [{ __typename: "Person", id: steady }] },
    );
    expect(result.data?._entities).toEqual([{ consecutiveInsuredMonths: 0 }]);
  });
});

describe("back-paid months", () => {
  it("count when paid before or on paidBy, not after", async () => {
    expect(await factOf(backPaid, D)).toMatchObject({
      insuredMonths: 59,
      // 2023-08 … 2026-10: 5 + 12 + 12 + 10 months.
      consecutiveInsuredMonths: 39,
    });
    expect(await factOf(backPaid, "2026-10-31")).toMatchObject({ insuredMonths: 58 });
    expect(await factOf(backPaid, "2026-11-02")).toMatchObject({
      insuredMonths: 60,
      consecutiveInsuredMonths: 60,
    });
  });

  it("count whenever paid when paidBy is omitted", async () => {
    expect(await factOf(backPaid, null)).toMatchObject({ insuredMonths: 60 });
  });

  it("are marked backPaid in the contributions", async () => {
    const result = await inject<{
      _entities: Array<{ contributions: Array<Record<string, unknown>> }>;
    }>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              contributions(from: "2023-04", to: "2023-07") {
                month
                region { code name province }
                employer { uscc }
                paidOn
                backPaid
              }
            }
          }
        }
      `,
      { representations: [{ __typename: "Person", id: backPaid }] },
    );
    expect(result.errors).toBeUndefined();
    const region = { code: "110108", name: "北京市海淀区", province: "北京市" };
    expect(result.data?._entities[0]?.contributions).toEqual([
      {
        month: "2023-04",
        region,
        employer: { uscc: employer },
        paidOn: "2023-04-15",
        backPaid: false,
      },
      {
        month: BACK_PAID_BEFORE,
        region,
        employer: { uscc: employer },
        paidOn: "2026-10-31",
        backPaid: true,
      },
      { month: BACK_PAID_ON, region, employer: { uscc: employer }, paidOn: D, backPaid: true },
      {
        month: BACK_PAID_AFTER,
        region,
        employer: { uscc: employer },
        paidOn: "2026-11-02",
        backPaid: true,
      },
    ]);
  });

  it("name no employer for a self-employed person", async () => {
    const result = await inject<{ _entities: Array<{ contributions: unknown[] }> }>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person { contributions { month employer { uscc } paidOn backPaid } }
          }
        }
      `,
      { representations: [{ __typename: "Person", id: selfEmployed }] },
    );
    expect(result.data?._entities[0]?.contributions).toEqual([
      { month: "2020-01", employer: null, paidOn: "2020-01-20", backPaid: false },
    ]);
  });
});

describe("regions", () => {
  it("do not count contributions outside Beijing", async () => {
    expect(await factOf(hebei)).toMatchObject({ insuredMonths: 0, consecutiveInsuredMonths: 0 });
    const facts = await factOf(tianjinMonth);
    expect(facts.insuredMonths).toBe(59);
    // 2026-01 … 2026-10 after the month paid in Tianjin.
    expect(facts.consecutiveInsuredMonths).toBe(10);
  });

  it("cover a province, a city or one county", async () => {
    const result = await inject<{ _entities: Array<Record<string, number>> }>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              hebei: insuredMonths(region: "130000", from: "${FIRST}", to: "${LAST}")
              shijiazhuang: insuredMonths(region: "130100", from: "${FIRST}", to: "${LAST}")
              changan: insuredMonths(region: "130102", from: "${FIRST}", to: "${LAST}")
              chaoyang: insuredMonths(region: "110105", from: "${FIRST}", to: "${LAST}")
            }
          }
        }
      `,
      { representations: [{ __typename: "Person", id: hebei }] },
    );
    expect(result.data?._entities).toEqual([
      { hebei: 60, shijiazhuang: 60, changan: 60, chaoyang: 0 },
    ]);
  });
});

describe("entities", () => {
  it("keep the order of the representations; unknown persons have 0 and no contributions", async () => {
    const result = await inject<{
      _entities: Array<{ id: string; insuredMonths: number; contributions: unknown[] }>;
    }>(
      app,
      /* GraphQL */ `
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Person {
              id
              insuredMonths(region: "110000", from: "${FIRST}", to: "${LAST}", paidBy: "${D}")
              contributions { month }
            }
          }
        }
      `,
      {
        representations: [unknown, gap, steady, unknown].map((id) => ({
          __typename: "Person",
          id,
        })),
      },
    );
    expect(result.errors).toBeUndefined();
    const entities = result.data?._entities ?? [];
    expect(entities.map((e) => [e.id, e.insuredMonths, e.contributions.length])).toEqual([
      [unknown, 0, 0],
      [gap, 59, 59],
      [steady, 60, 60],
      [unknown, 0, 0],
    ]);
  });

  it("answer a batch of 1,200 persons in one request", async () => {
    const ids = Array.from({ length: 1200 }, (_, i) =>
      i % 3 === 0 ? steady : makePersonId("110105", "2000-01-01", i % 999),
    );
    const facts = await factsOf(ids);
    expect(facts).toHaveLength(1200);
    expect(facts.filter((f) => f.insuredMonths === 60)).toHaveLength(400);
    expect(facts.filter((f) => f.insuredMonths === 0)).toHaveLength(800);
  });

  it("stay the same when the same export is imported again", async () => {
    writeRecords("social", data.dir, records);
    expect(await factOf(steady)).toMatchObject({ insuredMonths: 60 });
  });
});

describe("nonsensical arguments", () => {
  async function errorOf(field: string): Promise<Record<string, unknown> | undefined> {
    const result = await inject(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) { ... on Person { ${field} } }
      }`,
      { representations: [{ __typename: "Person", id: steady }] },
    );
    const [error] = result.errors ?? [];
    // An error without extensions (a plain Error thrown in a resolver) is an error all the same.
    return error ? (error.extensions ?? { message: error.message }) : undefined;
  }

  it("are rejected with BAD_USER_INPUT naming the argument", async () => {
    expect(
      await errorOf(`insuredMonths(region: "11000", from: "${FIRST}", to: "${LAST}")`),
    ).toMatchObject({ code: "BAD_USER_INPUT", argument: "region" });
    expect(
      await errorOf(`consecutiveInsuredMonths(region: "990000", upTo: "${LAST}")`),
    ).toMatchObject({ code: "BAD_USER_INPUT", argument: "region" });
    expect(
      await errorOf(`insuredMonths(region: "110000", from: "${LAST}", to: "${FIRST}")`),
    ).toMatchObject({ code: "BAD_USER_INPUT", argument: "to" });
    expect(
      await errorOf(`insuredMonths(region: "110000", from: "1920-01", to: "2020-01")`),
    ).toMatchObject({ code: "BAD_USER_INPUT", argument: "to" });
    expect(
      await errorOf(`consecutiveInsuredMonths(region: "110000", upTo: "2201-01")`),
    ).toMatchObject({ code: "BAD_USER_INPUT", argument: "upTo" });
    expect(await errorOf(`contributions(from: "1899-12") { month }`)).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "from",
    });
  });

  it("reject a malformed month before any resolver runs", async () => {
    expect(
      await errorOf(`insuredMonths(region: "110000", from: "2021-13", to: "${LAST}")`),
    ).toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("accept exactly 100 years", async () => {
    expect(
      await errorOf(`insuredMonths(region: "110000", from: "1920-01", to: "2019-12")`),
    ).toBeUndefined();
  });
});
