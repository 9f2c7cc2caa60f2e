import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId, makeUscc } from "../../common/ids.ts";
import { buildTaxSubgraph } from "../../subgraphs/tax/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

// Application date D = 2026-11-01: the income-tax years are 2021 … 2025, the VAT year is 2025.
const D = "2026-11-01";
const YEARS = [2021, 2022, 2023, 2024, 2025];

const everyYear = makePersonId("110105", "1985-03-14", 11);
const zeroYear = makePersonId("110105", "1986-04-15", 13);
const latePayer = makePersonId("110105", "1987-05-16", 15);
const wrongYears = makePersonId("110105", "1988-06-17", 17);
const shanghai = makePersonId("310101", "1989-07-18", 19);
const unknownPerson = makePersonId("120101", "1990-08-19", 21);

const exactly = makeUscc("110105", "MA01TAX10");
const justShort = makeUscc("110105", "MA01TAX20");
const lateVat = makeUscc("110105", "MA01TAX30");
const unknownOrganization = makeUscc("110105", "MA01TAX40");
const inTwoPayments = makeUscc("110105", "MA01TAX50");

function incomeTax(
  personId: string,
  period: string,
  amount: string,
  paidOn?: string,
  region = "110105",
) {
  return { kind: "incomeTax", personId, period, region, amount, paidOn: paidOn ?? `${period}-15` };
}

function vat(uscc: string, period: string, amount: string, paidOn?: string, region = "110105") {
  return { kind: "vat", uscc, period, region, amount, paidOn: paidOn ?? `${period}-15` };
}

const records = [
  ...YEARS.map((year) => incomeTax(everyYear, `${year}-06`, "120.00")),
  incomeTax(everyYear, "2025-07", "1000"),
  incomeTax(everyYear, "2025-08", "114.5"),
  // 2022 is on record, but with nothing to pay.
  ...YEARS.map((year) => incomeTax(zeroYear, `${year}-06`, year === 2022 ? "0" : "35.00")),
  // 2023 was paid only after D; 2024 exactly on D.
  ...YEARS.map((year) =>
    incomeTax(
      latePayer,
      `${year}-06`,
      "50.00",
      year === 2023 ? "2026-11-02" : year === 2024 ? D : undefined,
    ),
  ),
  // Periods just outside 2021 … 2025 do not count, whenever they were paid.
  incomeTax(wrongYears, "2020-12", "500.00", "2021-01-10"),
  incomeTax(wrongYears, "2026-01", "500.00", "2026-02-10"),
  ...[2022, 2023, 2024].map((year) => incomeTax(wrongYears, `${year}-03`, "10.00")),
  // Paid in Shanghai (and once in Beijing, in a different region of the same period).
  ...YEARS.map((year) => incomeTax(shanghai, `${year}-06`, "80.00", undefined, "310101")),
  incomeTax(shanghai, "2025-06", "0.01", undefined, "110101"),

  vat(exactly, "2025-01", "30000.00"),
  vat(exactly, "2025-12", "20000.00", "2026-01-15"),
  vat(exactly, "2024-12", "99999.00"),
  vat(exactly, "2026-01", "99999.00"),
  vat(justShort, "2025-03", "30000"),
  vat(justShort, "2025-09", "19999.99"),
  vat(justShort, "2025-10", "5000.00", undefined, "120101"),
  vat(lateVat, "2025-05", "40000.00"),
  vat(lateVat, "2025-12", "10000.00", "2026-11-02"),
  // One month's VAT paid in two payments, the second one later: both are records.
  vat(inTwoPayments, "2025-06", "30000.00", "2025-07-15"),
  vat(inTwoPayments, "2025-06", "20000.00", "2025-09-01"),
  vat(inTwoPayments, "2025-06", "5000.00", "2026-11-02"),
];

let app: FastifyInstance;
const data = tempDataDir();

beforeAll(async () => {
  writeRecords("tax", data.dir, records);
  app = await buildTaxSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
});

afterAll(async () => {
  await app?.close();
  data.remove();
});

const personRepresentations = (ids: string[]) => ids.map((id) => ({ __typename: "Person", id }));
const organizationRepresentations = (usccs: string[]) =>
  usccs.map((uscc) => ({ __typename: "Organization", uscc }));

async function entities<T>(
  selection: string,
  representations: object[],
  variables: Record<string, unknown> = {},
  variableTypes = "",
): Promise<T[]> {
  const result = await inject<{ _entities: T[] }>(
    app,
    `query ($representations: [_Any!]!${variableTypes}) {
      _entities(representations: $representations) { ${selection} }
    }`,
    { representations, ...variables },
  );
  expect(result.errors).toBeUndefined();
  return result.data?._entities ?? [];
}

async function incomeTaxYearsOf(id: string, paidBy: string | null = D): Promise<number[]> {
  const [entity] = await entities<{ incomeTaxYears: number[] }>(
    `... on Person { incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025, paidBy: $paidBy) }`,
    personRepresentations([id]),
    { paidBy },
    ", $paidBy: Date",
  );
  return entity?.incomeTaxYears ?? [];
}

describe("income-tax years of the Beijing car lottery (D = 2026-11-01)", () => {
  it("lists every year with a positive total in Beijing, ascending", async () => {
    expect(await incomeTaxYearsOf(everyYear)).toEqual(YEARS);
  });

  it("leaves out a year whose amounts add up to 0", async () => {
    expect(await incomeTaxYearsOf(zeroYear)).toEqual([2021, 2023, 2024, 2025]);
  });

  it("leaves out a payment made after paidBy, keeps one made on it", async () => {
    expect(await incomeTaxYearsOf(latePayer)).toEqual([2021, 2022, 2024, 2025]);
    expect(await incomeTaxYearsOf(latePayer, "2026-10-31")).toEqual([2021, 2022, 2025]);
    expect(await incomeTaxYearsOf(latePayer, "2026-11-02")).toEqual(YEARS);
    expect(await incomeTaxYearsOf(latePayer, null)).toEqual(YEARS);
  });

  it("counts a period in its own year, not the year it was paid in", async () => {
    expect(await incomeTaxYearsOf(wrongYears)).toEqual([2022, 2023, 2024]);
  });

  it("counts only payments in Beijing", async () => {
    expect(await incomeTaxYearsOf(shanghai)).toEqual([2025]);
  });
});

describe("income-tax totals and payments", () => {
  it("sum integer fen and format them as yuan with two decimals", async () => {
    const [every, unknown, shanghaiTotals] = await entities<Record<string, string>>(
      `... on Person {
        all: incomeTaxTotal(year: 2025)
        beijing: incomeTaxTotal(year: 2025, region: "110000", paidBy: "${D}")
        chaoyang: incomeTaxTotal(year: 2025, region: "110105")
        shanghai: incomeTaxTotal(year: 2025, region: "310000")
        before: incomeTaxTotal(year: 2025, paidBy: "2025-07-14")
      }`,
      personRepresentations([everyYear, unknownPerson, shanghai]),
    );
    expect(every).toEqual({
      all: "1234.50",
      beijing: "1234.50",
      chaoyang: "1234.50",
      shanghai: "0.00",
      before: "120.00",
    });
    expect(unknown).toEqual({
      all: "0.00",
      beijing: "0.00",
      chaoyang: "0.00",
      shanghai: "0.00",
      before: "0.00",
    });
    expect(shanghaiTotals).toMatchObject({ all: "80.01", beijing: "0.01", shanghai: "80.00" });
  });

  it("list the payments of a year by period", async () => {
    const [entity] = await entities<{ incomeTaxPayments: unknown[] }>(
      `... on Person {
        incomeTaxPayments(year: 2025) { period region { code name province } amount paidOn }
      }`,
      personRepresentations([everyYear]),
    );
    const region = { code: "110105", name: "北京市朝阳区", province: "北京市" };
    expect(entity?.incomeTaxPayments).toEqual([
      { period: "2025-06", region, amount: "120.00", paidOn: "2025-06-15" },
      { period: "2025-07", region, amount: "1000.00", paidOn: "2025-07-15" },
      { period: "2025-08", region, amount: "114.50", paidOn: "2025-08-15" },
    ]);
  });

  it("list every year's payments when no year is given", async () => {
    const [entity] = await entities<{ incomeTaxPayments: Array<{ period: string }> }>(
      "... on Person { incomeTaxPayments { period } }",
      personRepresentations([wrongYears]),
    );
    expect(entity?.incomeTaxPayments.map((p) => p.period)).toEqual([
      "2020-12",
      "2022-03",
      "2023-03",
      "2024-03",
      "2026-01",
    ]);
  });
});

describe("VAT of organisations (the year before D's year, in Beijing, paid by D)", () => {
  const selection = `... on Organization {
    uscc
    vatTotal(year: 2025, region: "110000", paidBy: "${D}")
  }`;

  it("totals exactly 50000.00 and 49999.99 at the threshold", async () => {
    expect(
      await entities(selection, organizationRepresentations([exactly, justShort, lateVat])),
    ).toEqual([
      { uscc: exactly, vatTotal: "50000.00" },
      // The 5000.00 paid in Tianjin does not count.
      { uscc: justShort, vatTotal: "49999.99" },
      // The 10000.00 paid after D does not count.
      { uscc: lateVat, vatTotal: "40000.00" },
    ]);
  });

  it("adds up a month paid in several payments, each by its own payment date", async () => {
    expect(await entities(selection, organizationRepresentations([inTwoPayments]))).toEqual([
      { uscc: inTwoPayments, vatTotal: "50000.00" },
    ]);
    const [all] = await entities<{ vatTotal: string }>(
      "... on Organization { vatTotal(year: 2025) }",
      organizationRepresentations([inTwoPayments]),
    );
    expect(all?.vatTotal).toBe("55000.00");
  });

  it("counts every region and payment without region and paidBy", async () => {
    const totals = await entities<{ vatTotal: string }>(
      "... on Organization { vatTotal(year: 2025) }",
      organizationRepresentations([justShort, lateVat]),
    );
    expect(totals).toEqual([{ vatTotal: "54999.99" }, { vatTotal: "50000.00" }]);
  });

  it("lists the payments of a year", async () => {
    const [entity] = await entities<{ vatPayments: unknown[] }>(
      "... on Organization { vatPayments(year: 2025) { period region { code } amount paidOn } }",
      organizationRepresentations([exactly]),
    );
    expect(entity?.vatPayments).toEqual([
      { period: "2025-01", region: { code: "110105" }, amount: "30000.00", paidOn: "2025-01-15" },
      { period: "2025-12", region: { code: "110105" }, amount: "20000.00", paidOn: "2026-01-15" },
    ]);
  });
});

describe("entities", () => {
  it("keep the order of the representations; unknown subjects have 0.00 and no years", async () => {
    const result = await entities<Record<string, unknown>>(
      `... on Person {
        id
        incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025)
        incomeTaxPayments { amount }
      }
      ... on Organization { uscc vatTotal(year: 2025) vatPayments { amount } }`,
      [
        ...personRepresentations([unknownPerson, zeroYear]),
        ...organizationRepresentations([unknownOrganization, exactly]),
        ...personRepresentations([unknownPerson]),
      ],
    );
    expect(result).toEqual([
      { id: unknownPerson, incomeTaxYears: [], incomeTaxPayments: [] },
      {
        id: zeroYear,
        incomeTaxYears: [2021, 2023, 2024, 2025],
        incomeTaxPayments: [
          { amount: "35.00" },
          { amount: "0.00" },
          { amount: "35.00" },
          { amount: "35.00" },
          { amount: "35.00" },
        ],
      },
      { uscc: unknownOrganization, vatTotal: "0.00", vatPayments: [] },
      {
        uscc: exactly,
        vatTotal: "50000.00",
        vatPayments: [
          { amount: "99999.00" },
          { amount: "30000.00" },
          { amount: "20000.00" },
          { amount: "99999.00" },
        ],
      },
      { id: unknownPerson, incomeTaxYears: [], incomeTaxPayments: [] },
    ]);
  });

  it("answer a batch of 1,200 persons in one request", async () => {
    const ids = Array.from({ length: 1200 }, (_, i) =>
      i % 4 === 0 ? everyYear : makePersonId("110105", "2000-01-01", i % 999),
    );
    const years = await entities<{ incomeTaxYears: number[] }>(
      `... on Person { incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025, paidBy: "${D}") }`,
      personRepresentations(ids),
    );
    expect(years).toHaveLength(1200);
    expect(years.filter((y) => y.incomeTaxYears.length === 5)).toHaveLength(300);
    expect(years.filter((y) => y.incomeTaxYears.length === 0)).toHaveLength(900);
  });

  it("stay the same when the same export is imported again", async () => {
    writeRecords("tax", data.dir, records);
    const [entity] = await entities<{ vatTotal: string }>(
      "... on Organization { vatTotal(year: 2025) }",
      organizationRepresentations([exactly]),
    );
    expect(entity).toEqual({ vatTotal: "50000.00" });
  });
});

describe("nonsensical arguments", () => {
  async function errorOf(selection: string, representation: object): Promise<unknown> {
    const result = await inject(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) { ${selection} }
      }`,
      { representations: [representation] },
    );
    const [error] = result.errors ?? [];
    // An error without extensions (a plain Error thrown in a resolver) is an error all the same.
    return error ? (error.extensions ?? { message: error.message }) : undefined;
  }
  const person = { __typename: "Person", id: everyYear };
  const organization = { __typename: "Organization", uscc: exactly };

  it("are rejected with BAD_USER_INPUT naming the argument", async () => {
    const cases: Array<[string, object, string]> = [
      [
        `... on Person { incomeTaxYears(region: "1100", fromYear: 2021, toYear: 2025) }`,
        person,
        "region",
      ],
      [
        `... on Person { incomeTaxYears(region: "110000", fromYear: 2025, toYear: 2021) }`,
        person,
        "toYear",
      ],
      [
        `... on Person { incomeTaxYears(region: "110000", fromYear: 1900, toYear: 2000) }`,
        person,
        "toYear",
      ],
      [
        `... on Person { incomeTaxYears(region: "110000", fromYear: 1899, toYear: 1950) }`,
        person,
        "fromYear",
      ],
      [`... on Person { incomeTaxTotal(year: 2201) }`, person, "year"],
      [`... on Person { incomeTaxTotal(year: 2025, region: "99999X") }`, person, "region"],
      [`... on Person { incomeTaxPayments(year: 0) { amount } }`, person, "year"],
      [`... on Organization { vatTotal(year: 1800) }`, organization, "year"],
      [`... on Organization { vatTotal(year: 2025, region: "abc") }`, organization, "region"],
      [`... on Organization { vatPayments(year: 99999) { amount } }`, organization, "year"],
    ];
    for (const [selection, representation, argument] of cases) {
      expect(await errorOf(selection, representation), selection).toMatchObject({
        code: "BAD_USER_INPUT",
        argument,
      });
    }
  });

  it("accept exactly 100 years", async () => {
    expect(
      await errorOf(
        `... on Person { incomeTaxYears(region: "110000", fromYear: 1901, toYear: 2000) }`,
        person,
      ),
    ).toBeUndefined();
  });
});
