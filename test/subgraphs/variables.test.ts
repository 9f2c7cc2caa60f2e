/**
 * A department checks a request's variables once (common/subgraph.ts, `checkVariablesOnce`):
 * handed to mercurius in its preExecution hook, they still reach the query, and wrong ones are
 * still refused, both before a query is compiled (graphql-js) and after (graphql-jit).
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId } from "../../common/ids.ts";
import { buildHukouSubgraph } from "../../subgraphs/hukou/index.ts";
import { tempDataDir, writeRecords } from "../helpers.ts";

const data = tempDataDir();
let app: FastifyInstance;
const id = makePersonId("110105", "1990-01-01", 123);

beforeAll(async () => {
  writeRecords("hukou", data.dir, [
    {
      kind: "person",
      id,
      name: "王芳",
      gender: "M",
      birthDate: "1990-01-01",
      hukouRegion: "110105",
      hukouAddress: "朝阳区建国路1号",
      status: "ALIVE",
    },
  ]);
  app = await buildHukouSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
});

afterAll(async () => {
  await app?.close();
  data.remove();
});

interface Answer {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string }>;
}

async function post(query: string, variables: unknown): Promise<Answer> {
  const response = await app.inject({
    method: "POST",
    url: "/graphql",
    headers: { "content-type": "application/json" },
    payload: JSON.stringify({ query, variables }),
  });
  return response.json() as Answer;
}

describe("a department's variables", () => {
  const query =
    "query ($id: ID!, $ids: [ID!]!) { person(id: $id) { name } people(ids: $ids) { id } }";

  // mercurius runs a query with graphql-js until it has seen it once, then compiled: four rounds
  // cover both.
  it("reach the query, and wrong or missing ones are refused, compiled or not", async () => {
    for (let round = 0; round < 4; round++) {
      expect(await post(query, { id, ids: [id] })).toEqual({
        data: { person: { name: "王芳" }, people: [{ id }] },
      });
      const wrong = await post(query, { id: { not: "an id" }, ids: [id] });
      expect(wrong.data ?? null).toBeNull();
      expect(wrong.errors?.map((error) => error.message)).toEqual([
        expect.stringMatching(/^Variable "\$id" got invalid value/),
      ]);
      const missing = await post(query, { ids: [id] });
      expect(missing.data ?? null).toBeNull();
      expect(missing.errors?.map((error) => error.message)).toEqual([
        'Variable "$id" of required type "ID!" was not provided.',
      ]);
      const none = await post(query, null);
      expect(none.errors).toHaveLength(2);
    }
  });

  it("reach `_entities` as representations", async () => {
    const entities =
      "query ($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }";
    for (let round = 0; round < 3; round++) {
      expect(await post(entities, { r: [{ __typename: "Person", id }] })).toEqual({
        data: { _entities: [{ name: "王芳" }] },
      });
    }
  });

  it("of a GET request are read by mercurius as before", async () => {
    const response = await app.inject({
      method: "GET",
      url: `/graphql?query=${encodeURIComponent(query)}&variables=${encodeURIComponent(JSON.stringify({ id, ids: [] }))}`,
    });
    expect(response.json()).toEqual({ data: { person: { name: "王芳" }, people: [] } });
  });
});
