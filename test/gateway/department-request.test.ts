/**
 * The body of a department request is signed and parsed as sent, so writing a representation
 * list's JSON once and reusing it must give exactly the text JSON.stringify gives.
 */
import { describe, expect, it } from "vitest";
import { departmentRequestBody } from "../../gateway/department-client.ts";

const QUERY =
  "query Q__tax__1($representations:[_Any!]!,$year:Int){_entities(representations:$representations){...on Person{incomeTaxTotal(year:$year)}}}";

const representations = [
  { __typename: "Person", id: "110105198503121015" },
  { __typename: "Person", id: "11010519491231002X", note: 'quote " and \\ and 中文 and \u2028' },
];

describe("departmentRequestBody", () => {
  const cases: Array<[string, Record<string, unknown>, string | undefined]> = [
    ["representations only", { representations }, "Q__tax__1"],
    ["other variables before and after", { year: 2025, representations, region: null }, "Q"],
    ["undefined and function values left out", { a: undefined, representations, f: () => 1 }, "Q"],
    ["no operation name", { representations }, undefined],
    ["no representations", { id: "110105198503121015" }, "Q"],
    ["representations that are not a list", { representations: "x" }, "Q"],
    ["an empty list", { representations: [] }, "Q"],
  ];
  for (const [name, variables, operationName] of cases) {
    it(`writes what JSON.stringify writes: ${name}`, () => {
      expect(departmentRequestBody(QUERY, variables, operationName)).toBe(
        JSON.stringify({ query: QUERY, variables, operationName }),
      );
    });
  }

  it("writes the same list the same way for every department it goes to", () => {
    const list = [{ __typename: "Person", id: "110108198707081026" }];
    const first = departmentRequestBody("query A{a}", { representations: list }, "A");
    const second = departmentRequestBody("query B{b}", { representations: list }, "B");
    expect(first).toBe(
      JSON.stringify({
        query: "query A{a}",
        variables: { representations: list },
        operationName: "A",
      }),
    );
    expect(second).toBe(
      JSON.stringify({
        query: "query B{b}",
        variables: { representations: list },
        operationName: "B",
      }),
    );
  });
});
