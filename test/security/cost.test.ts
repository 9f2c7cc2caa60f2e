/**
 * The cost estimate (demand control) against the checked-in supergraph: weights, list sizes from
 * lookups, slicing arguments and `@listSize`, products of nested lists, and the refusal. Through
 * the gateway, the limit is tested in limits.test.ts.
 */
import { readFileSync } from "node:fs";
import {
  buildSchema,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  type OperationDefinitionNode,
  parse,
} from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { Federation } from "../../gateway/execution/federation.ts";
import {
  type CostDirectives,
  CostEstimator,
  readCostDirectives,
} from "../../gateway/security/cost.ts";
import { readSupergraph, SUPERGRAPH_PATH } from "../../gateway/supergraph.ts";
import { batchScenario, interactiveScenario } from "../../scripts/bench/scenarios.ts";

let schema: GraphQLSchema;
let directives: CostDirectives;
let estimator: CostEstimator;

beforeAll(() => {
  const supergraph = readSupergraph(readFileSync(SUPERGRAPH_PATH, "utf8"));
  schema = new Federation({
    supergraphSdl: supergraph.plannerSdl,
    dataSources: () => ({}),
    logger: console,
  }).apiSchema;
  directives = supergraph.cost;
  estimator = new CostEstimator(schema, directives, 10);
});

function estimate(query: string, variables: Record<string, unknown> = {}, on = estimator) {
  const document = parse(query);
  const operation = document.definitions[0] as OperationDefinitionNode;
  return on.estimate(document, operation, variables);
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => String(i));

describe("the departments' cost directives", () => {
  it("are read from the supergraph", () => {
    expect(directives.listSizes.get("Person.contributions")).toEqual({
      assumedSize: 480,
      slicingArguments: [],
    });
    expect(directives.listSizes.get("Query.myAccessLog")).toEqual({
      assumedSize: 100,
      slicingArguments: ["limit"],
    });
    // Every list of objects the graph answers says how long it may be, but for root lookups,
    // which are as long as their list argument.
    const unsized: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith("__")) continue;
      for (const field of Object.values(type.getFields())) {
        const listOfObjects =
          isListType(getNullableType(field.type)) && isObjectType(getNamedType(field.type));
        const lookup = field.args.some((argument) => isListType(getNullableType(argument.type)));
        const coordinate = `${type.name}.${field.name}`;
        if (listOfObjects && !lookup && !directives.listSizes.has(coordinate)) {
          unsized.push(coordinate);
        }
      }
    }
    expect(unsized).toEqual([]);
  });

  it("take @cost weights of fields and types, under imported or namespaced names", () => {
    const read = readCostDirectives(
      parse(`
        schema @link(url: "https://specs.apollo.dev/cost/v0.1", import: ["@listSize"]) { query: Query }
        type Query { a: [A] @cost__cost(weight: 7) @listSize(assumedSize: 3) }
        type A @cost__cost(weight: 2) { b: Int }
      `),
    );
    expect(read.weights).toEqual(
      new Map([
        ["Query.a", 7],
        ["A", 2],
      ]),
    );
    expect(read.listSizes.get("Query.a")).toEqual({ assumedSize: 3, slicingArguments: [] });
    const renamed = readCostDirectives(
      parse(`
        schema @link(url: "https://specs.apollo.dev/cost/v0.1", as: "price") { query: Query }
        type Query { a: Int @price__cost(weight: 4) b: [Int] @price__listSize(assumedSize: 9) }
      `),
    );
    expect(renamed.weights.get("Query.a")).toBe(4);
    expect(renamed.listSizes.get("Query.b")?.assumedSize).toBe(9);
  });
});

describe("an operation's estimated cost", () => {
  it("counts objects, not scalar facts: the interactive and the batch questions", () => {
    // person 1, hukouRegion 1, legalRepresentativeOf 20 organisations of 1 each
    expect(estimate(interactiveScenario("2026-11-01").query, { id: "1" })).toBe(22);
    // one person per id, every fact a scalar
    expect(estimate(batchScenario("2026-11-01").query, { ids: ids(1000) })).toBe(1000);
  });

  it("sizes a root lookup by its list argument, in a variable, a literal or a single value", () => {
    const query = `query($ids: [ID!]!) { people(ids: $ids) { hukouRegion { code } } }`;
    expect(estimate(query, { ids: ids(3) })).toBe(6);
    // The formula is made once per operation; each request's variables are its own.
    expect(estimate(query, { ids: ids(250) })).toBe(500);
    expect(estimate(`{ people(ids: ["1", "2"]) { alive } }`)).toBe(2);
    expect(estimate(`{ people(ids: "1") { alive } }`)).toBe(1);
    expect(
      estimate(`query($ids: [ID!]!) { verify(policy: "p", subjects: $ids) { subject } }`, {
        ids: ids(40),
      }),
    ).toBe(40);
  });

  it("multiplies nested lists by their assumed sizes, and aliases add up", () => {
    // 2 × (person 1 + 20 organisations × (1 + 200 vehicles))
    expect(
      estimate(`{ people(ids: ["1", "2"]) { legalRepresentativeOf { vehicles { plate } } } }`),
    ).toBe(8042);
    const aliases = Array.from({ length: 29 }, (_, i) => `c${i}: contributions { month }`);
    expect(
      estimate(`query($ids: [ID!]!) { people(ids: $ids) { ${aliases.join(" ")} } }`, {
        ids: ids(1000),
      }),
    ).toBe(1000 * (1 + 29 * 480));
  });

  it("sizes a list by its slicing argument: a literal, a variable, else the default", () => {
    expect(estimate(`{ myAccessLog(limit: 7) { entry } }`)).toBe(7);
    const query = `query($n: Int) { myAccessLog(limit: $n) { entry } }`;
    expect(estimate(query, { n: 30 })).toBe(30);
    expect(estimate(query, {})).toBe(100);
    expect(estimate(`{ myAccessLog { entry } }`)).toBe(100);
  });

  it("counts fragments as they expand, a field merged under one key once, and skipped fields too", () => {
    const viaFragment = `query($ids: [ID!]!) { people(ids: $ids) { ...Facts } }
      fragment Facts on Person { hukouRegion { code } ... on Person { marriages { registeredOn } } }`;
    // 3 × (1 + 1 + 5 marriages)
    expect(estimate(viaFragment, { ids: ids(3) })).toBe(21);
    const merged = `{ people(ids: ["1"]) { hukouRegion { code } hukouRegion { name } } }`;
    expect(estimate(merged)).toBe(2);
    // Whether @skip applies is the variables' business; the estimate counts the field.
    const skipped = `query($no: Boolean = true) { people(ids: ["1"]) { hukouRegion @skip(if: $no) { code } } }`;
    expect(estimate(skipped)).toBe(2);
    // An explicit null for a slicing argument is no size: the assumed one applies.
    expect(estimate(`query($n: Int) { myAccessLog(limit: $n) { entry } }`, { n: null })).toBe(100);
  });

  it("prices a field selected under an interface by its type condition's definition", () => {
    const own = buildSchema(`
      interface Node { id: ID }
      type Thing implements Node { id: ID things: [Thing] }
      type Query { nodes: [Node] }
    `);
    const listSizes = new Map([
      ["Query.nodes", { assumedSize: 2, slicingArguments: [] }],
      ["Thing.things", { assumedSize: 3, slicingArguments: [] }],
    ]);
    const estimator = new CostEstimator(own, { weights: new Map(), listSizes }, 10);
    // 2 × (1 + 3 × 1)
    expect(estimate(`{ nodes { ... on Thing { things { id } } } }`, {}, estimator)).toBe(8);
  });

  it("uses the default list size for a list without @listSize", () => {
    const own = buildSchema(`type Query { items: [Item] } type Item { id: ID }`);
    const estimator = new CostEstimator(own, { weights: new Map(), listSizes: new Map() }, 4);
    expect(estimate(`{ items { id } }`, {}, estimator)).toBe(4);
  });

  it("weighs fields and types by @cost", () => {
    const own = buildSchema(`type Query { item: Item dear: Int } type Item { id: ID }`);
    const weights = new Map([
      ["Item", 3],
      ["Query.dear", 5],
    ]);
    const estimator = new CostEstimator(own, { weights, listSizes: new Map() }, 10);
    expect(estimate(`{ item { id } dear }`, {}, estimator)).toBe(8);
  });
});

describe("the budget", () => {
  const query = `query($ids: [ID!]!) { people(ids: $ids) { contributions { month } } }`;
  const refusal = (variables: Record<string, unknown>, max: number) => {
    const document = parse(query);
    const operation = document.definitions[0] as OperationDefinitionNode;
    const cost = estimator.estimate(document, operation, variables);
    return estimator.errors(cost, max).map((error) => error.toJSON());
  };

  it("refuses an operation over it with LIMIT_EXCEEDED, naming the estimate", () => {
    expect(refusal({ ids: ids(10) }, 4810)).toEqual([]);
    expect(refusal({ ids: ids(11) }, 4810)).toEqual([
      {
        message:
          "the estimated cost of this operation is 5,291; at most 4,810 per request (ask for fewer subjects, fewer list fields, or narrower lists)",
        extensions: { code: "LIMIT_EXCEEDED", limit: "cost", max: 4810, cost: 5291 },
      },
    ]);
  });

  it("says so when the estimate is past counting", () => {
    const own = buildSchema(`type Query { a: [A] } type A { b: [A] }`);
    const deep = new CostEstimator(own, { weights: new Map(), listSizes: new Map() }, 1e9);
    const document = parse(
      `{ a { b { b { b { b { b { b { b { b { b { b { __typename } } } } } } } } } } } }`,
    );
    const operation = document.definitions[0] as OperationDefinitionNode;
    const [error] = deep.errors(deep.estimate(document, operation, {}), 1000);
    expect(error?.message).toContain("is beyond counting");
    expect(error?.extensions).toEqual({
      code: "LIMIT_EXCEEDED",
      limit: "cost",
      max: 1000,
      cost: null,
    });
  });
});
