/**
 * Result shaping has two paths: a generated straight shaper for well-formed answers, and the
 * walk that reports problems. Whatever the departments answered, a desk must get exactly what the
 * walk gives; this compares the two over well-formed answers and every kind of malformed one.
 */
import { readFileSync } from "node:fs";
import { type GraphQLSchema, type OperationDefinitionNode, parse } from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { Federation } from "../../gateway/execution/federation.ts";
import { compileShape } from "../../gateway/execution/result-shaping.ts";
import { readSupergraph, SUPERGRAPH_PATH } from "../../gateway/supergraph.ts";

let schema: GraphQLSchema;

beforeAll(() => {
  const federation = new Federation({
    supergraphSdl: readSupergraph(readFileSync(SUPERGRAPH_PATH, "utf8")).plannerSdl,
    dataSources: () => ({}),
    logger: console,
  });
  schema = federation.apiSchema;
});

const QUERY = /* GraphQL */ `
  query Facts($ids: [ID!]!, $withRegion: Boolean!, $skipTax: Boolean = false) {
    people(ids: $ids) {
      __typename
      id
      alive
      age: ageOn(on: "2026-11-01")
      gender
      hukouRegion @include(if: $withRegion) {
        code
        name
      }
      incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025) @skip(if: $skipTax)
      birthDate
      ...Companies
    }
  }
  fragment Companies on Person {
    legalRepresentativeOf {
      uscc
      name
      active
    }
  }
`;

/** A well-formed merged answer, as the plan executor leaves it (extra keys included). */
function person(index: number): Record<string, unknown> {
  return {
    __typename: "Person",
    id: `11010519800101${String(1000 + index)}`,
    alive: index % 3 !== 0,
    age: 40 + index,
    gender: index % 2 === 0 ? "MALE" : "FEMALE",
    hukouRegion: { __typename: "Region", code: "110105", name: "北京市朝阳区" },
    incomeTaxYears: [2021, 2022],
    birthDate: "1980-01-01",
    legalRepresentativeOf:
      index === 1
        ? [{ __typename: "Organization", uscc: "91110105MA01ABC1XD", name: "张氏", active: true }]
        : [],
    _hidden: "key the desk did not ask for",
  };
}

function answer(count: number): Record<string, unknown> {
  return { people: Array.from({ length: count }, (_, index) => person(index)) };
}

/** Each malformed answer: what the department sent instead. */
const MALFORMED: Array<[string, (data: Record<string, unknown>) => void]> = [
  ["a person missing (nullable list element)", (data) => ((data.people as unknown[])[1] = null)],
  ["a non-null field null", (data) => (people(data)[2].alive = null)],
  ["a non-null field absent", (data) => delete people(data)[0].gender],
  ["a Boolean as a string", (data) => (people(data)[1].alive = "yes")],
  ["an Int as a fraction", (data) => (people(data)[1].age = 40.5)],
  ["an Int beyond 32 bits (valid)", (data) => (people(data)[1].age = 2 ** 40)],
  ["an Int as a numeric string", (data) => (people(data)[1].age = "41")],
  ["an ID as a number (valid)", (data) => (people(data)[0].id = 42)],
  ["an enum value unknown", (data) => (people(data)[0].gender = "OTHER")],
  ["a list as an object", (data) => (people(data)[0].incomeTaxYears = { 0: 2021 })],
  ["a null in a list of non-null", (data) => (people(data)[0].incomeTaxYears = [2021, null])],
  [
    "an object of another type",
    (data) => ((people(data)[0].hukouRegion as { __typename: string }).__typename = "Vehicle"),
  ],
  ["an object as a string", (data) => (people(data)[0].hukouRegion = "110105")],
  [
    "a nested non-null null",
    (data) =>
      ((
        (people(data)[1].legalRepresentativeOf as Array<Record<string, unknown>>)[0] as Record<
          string,
          unknown
        >
      ).name = null),
  ],
  ["the root list null", (data) => (data.people = null)],
  ["the root list absent", (data) => delete data.people],
  ["a custom scalar of any shape (valid)", (data) => (people(data)[0].birthDate = { y: 1980 })],
];

/** The persons of an answer built by `answer(3)` (three of them). */
function people(
  data: Record<string, unknown>,
): [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>] {
  return data.people as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
}

function shapes() {
  const document = parse(QUERY);
  const operation = document.definitions[0] as OperationDefinitionNode;
  const straight = compileShape(schema, document, operation);
  const walk = compileShape(schema, document, operation, { straight: false });
  if (!straight || !walk) throw new Error("the operation did not compile");
  return { straight, walk };
}

/**
 * What a desk would receive: data and errors as JSON, paths and messages included — or the
 * failure itself, for answers no response can be made of (a list that is not a list).
 */
function received(shape: () => { data: unknown; errors: readonly unknown[] }): unknown {
  try {
    const result = shape();
    return JSON.parse(JSON.stringify({ data: result.data, errors: result.errors }));
  } catch (error) {
    return { failed: (error as Error).message };
  }
}

describe("result shaping, straight and walked", () => {
  const variableSets = [
    { ids: [], withRegion: true },
    { ids: [], withRegion: false, skipTax: true },
    { ids: [], withRegion: true, skipTax: false },
  ];

  it("shapes a well-formed answer straight, exactly as the walk does", () => {
    const { straight, walk } = shapes();
    for (const variables of variableSets) {
      const input = answer(3);
      const fast = straight.shape(input, variables);
      expect(fast.walked).toBe(false);
      expect(received(() => fast)).toEqual(received(() => walk.shape(answer(3), variables)));
      // Only what was asked, in the order asked: no extra keys, no typename of the data's own.
      const first = people(fast.data ?? {})[0];
      expect(Object.keys(first)).toEqual(
        [
          "__typename",
          "id",
          "alive",
          "age",
          "gender",
          variables.withRegion ? "hukouRegion" : null,
          variables.skipTax ? null : "incomeTaxYears",
          "birthDate",
          "legalRepresentativeOf",
        ].filter((key) => key !== null),
      );
    }
  });

  for (const [name, spoil] of MALFORMED) {
    it(`answers as the walk does when ${name}`, () => {
      const { straight, walk } = shapes();
      for (const variables of variableSets) {
        const input = answer(3);
        spoil(input);
        const expected = answer(3);
        spoil(expected);
        const walked = received(() => walk.shape(expected, variables));
        // Both failing alike would pass: only the answer no response can be made of may fail.
        if (name !== "a list as an object") expect(walked).not.toHaveProperty("failed");
        expect(received(() => straight.shape(input, variables))).toEqual(walked);
      }
    });
  }

  it("leaves the walk to report what it reports", () => {
    const { straight } = shapes();
    const input = answer(3);
    people(input)[2].alive = null;
    const result = straight.shape(input, { ids: [], withRegion: true });
    expect(result.walked).toBe(true);
    expect(result.errors.map((error) => error.path)).toEqual([["people", 2, "alive"]]);
    expect((result.data?.people as unknown[] | undefined)?.[2]).toBeNull();
  });

  it("keeps keys that are not plain properties with the walk", () => {
    const document = parse("query { people(ids: []) { constructor: id } }");
    const operation = document.definitions[0] as OperationDefinitionNode;
    const shape = compileShape(schema, document, operation);
    const result = shape?.shape({ people: [{ constructor: "1" }] }, {});
    expect(result?.walked).toBe(true);
    expect(JSON.stringify(result?.data)).toBe('{"people":[{"constructor":"1"}]}');
  });
});
