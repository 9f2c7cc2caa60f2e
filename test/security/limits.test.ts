/**
 * Operation hardening through the real gateway: depth, aliases, tokens, list sizes, the estimated
 * cost and body size each refused with LIMIT_EXCEEDED before any department is called; per-desk rate limits (429 and
 * Retry-After); desks restricted to registered (persisted) operations.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashKey } from "../../gateway/security/desks.ts";
import { WANG_QIANG, writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

const REGISTERED_OPERATION = `query LicenceCheck($id: ID!) { person(id: $id) { hasValidDriverLicense(on: "2026-11-01") } }`;
const REGISTERED_HASH = createHash("sha256").update(REGISTERED_OPERATION).digest("hex");
const THROTTLED = { authorization: "Bearer throttled-desk-key", "x-purpose": "testing" };
const THROTTLED_TOO = { authorization: "Bearer throttled-too-desk-key", "x-purpose": "testing" };
const SAFELISTED = { authorization: "Bearer safelisted-desk-key", "x-purpose": "testing" };
const BULK = { authorization: "Bearer bulk-desk-key", "x-purpose": "testing" };
const NARROW = { authorization: "Bearer narrow-desk-key", "x-purpose": "status" };
/** Social security is reached through a relay, which sees whether a refused request reached it. */
const social = new Relay();

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  const purposes = [{ code: "testing", legalBasis: "Test suite.", scopes: ["*"] }];
  const desksFile = join(data.dir, "desks.json");
  writeFileSync(
    desksFile,
    JSON.stringify({
      desks: [
        {
          id: "open",
          name: "Unlimited test desk",
          keys: [`sha256:${hashKey("dev-desk-key")}`],
          rateLimit: { max: 100000, windowMs: 60000 },
          purposes: [{ code: "demo", legalBasis: "Test suite.", scopes: ["*"] }],
        },
        {
          id: "throttled",
          name: "Throttled test desk",
          keys: [`sha256:${hashKey("throttled-desk-key")}`],
          rateLimit: { max: 2, windowMs: 60000 },
          purposes,
        },
        {
          id: "throttled-too",
          name: "Another throttled test desk",
          keys: [`sha256:${hashKey("throttled-too-desk-key")}`],
          rateLimit: { max: 2, windowMs: 60000 },
          purposes,
        },
        {
          id: "bulk",
          name: "Desk with a larger cost budget",
          keys: [`sha256:${hashKey("bulk-desk-key")}`],
          maxCost: 20_000,
          purposes,
        },
        {
          id: "narrow",
          name: "Desk that may not read contributions",
          keys: [`sha256:${hashKey("narrow-desk-key")}`],
          purposes: [{ code: "status", legalBasis: "Test suite.", scopes: ["hukou:status"] }],
        },
        {
          id: "safelisted",
          name: "Desk restricted to registered operations",
          keys: [`sha256:${hashKey("safelisted-desk-key")}`],
          persistedOperationsOnly: true,
          purposes,
        },
      ],
    }),
  );
  const operationsFile = join(data.dir, "operations.json");
  writeFileSync(
    operationsFile,
    JSON.stringify({
      format: "apollo-persisted-query-manifest",
      version: 1,
      operations: [
        { id: REGISTERED_HASH, name: "LicenceCheck", type: "query", body: REGISTERED_OPERATION },
      ],
    }),
  );
  platform = await startPlatform(data.dir, {
    config: {
      security: {
        desksFile,
        operationsFile,
        limits: {
          maxDepth: 4,
          maxAliases: 3,
          maxTokens: 300,
          maxListSize: 50,
          maxCost: 5_000,
          costListSize: 10,
          maxBodyBytes: 20_000,
        },
      },
    },
    relays: { social },
  });
});

afterAll(() => tearDown(platform, data.remove));

async function post(body: unknown, headers: Record<string, string> = DEV_DESK) {
  const response = await fetch(platform.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json",
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

describe("operation limits", () => {
  it("refuses an operation nested deeper than the limit", async () => {
    const { status, body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { legalRepresentativeOf { legalRepresentative { spouse { hukouRegion { code } } } } } }`,
    );
    expect(status).toBe(400);
    expect(body.errors?.[0]).toEqual({
      message: "Query depth limit of 4 exceeded, found 6.",
      extensions: { code: "LIMIT_EXCEEDED", limit: "depth", max: 4 },
    });
    expect(body.data).toBeUndefined();
  });

  it("refuses more aliases than the limit, counted through fragments", async () => {
    const { body } = await platform.query(
      `{ a: person(id: "${ZHANG_WEI}") { ...F } b: person(id: "${ZHANG_WEI}") { ...F } }
       fragment F on Person { x: alive y: alive }`,
    );
    expect(body.errors?.[0]?.extensions).toEqual({
      code: "LIMIT_EXCEEDED",
      limit: "aliases",
      max: 3,
    });
  });

  it("counts an alias named __typename like any other", async () => {
    const { body } = await platform.query(
      `{ a: person(id: "${ZHANG_WEI}") { id } b: person(id: "${ZHANG_WEI}") { id }
         c: person(id: "${ZHANG_WEI}") { id } __typename: person(id: "${ZHANG_WEI}") { id } }`,
    );
    expect(body.errors?.[0]?.extensions).toMatchObject({
      code: "LIMIT_EXCEEDED",
      limit: "aliases",
    });
  });

  it("refuses a document with more tokens than the limit", async () => {
    const fields = Array.from({ length: 350 }, () => "alive").join(" ");
    const { body } = await platform.query(`{ person(id: "${ZHANG_WEI}") { ${fields} } }`);
    expect(body.errors?.[0]).toEqual({
      message: "Token limit of 300 exceeded.",
      extensions: { code: "LIMIT_EXCEEDED", limit: "tokens", max: 300 },
    });
  });

  it("refuses a list argument longer than the limit, in a variable or a literal", async () => {
    const ids = Array.from({ length: 51 }, () => ZHANG_WEI);
    const variable = await platform.query(`query($ids: [ID!]!) { people(ids: $ids) { alive } }`, {
      ids,
    });
    expect(variable.status).toBe(400);
    expect(variable.body.errors?.[0]).toEqual({
      message: "people(ids:) has 51 elements; at most 50 per request (send several requests)",
      extensions: { code: "LIMIT_EXCEEDED", limit: "listSize", max: 50, argument: "ids" },
    });
    const literal = await platform.query(
      `{ organizations(usccs: [${ids.map(() => '"91110105MA01ABC1XD"').join(",")}]) { uscc } }`,
    );
    expect(literal.body.errors?.[0]?.extensions).toMatchObject({
      code: "LIMIT_EXCEEDED",
      argument: "usccs",
    });
    const within = await platform.query(`query($ids: [ID!]!) { people(ids: $ids) { alive } }`, {
      ids: ids.slice(0, 50),
    });
    expect(within.body.errors).toBeUndefined();
  });

  it("counts every list argument of a request together: aliases do not multiply the limit", async () => {
    const thirty = Array.from({ length: 30 }, () => ZHANG_WEI);
    const twice = await platform.query(
      `query($a: [ID!]!, $b: [ID!]!) { a: people(ids: $a) { alive } b: people(ids: $b) { alive } }`,
      { a: thirty, b: thirty },
    );
    expect(twice.status).toBe(400);
    expect(twice.body.errors).toEqual([
      {
        message:
          "the list arguments of this request have 60 elements in all; at most 50 per request (send several requests)",
        extensions: { code: "LIMIT_EXCEEDED", limit: "listSize", max: 50 },
      },
    ]);
    const split = await platform.query(
      `query($a: [ID!]!, $b: [ID!]!) { a: people(ids: $a) { alive } b: people(ids: $b) { alive } }`,
      { a: thirty, b: thirty.slice(0, 20) },
    );
    expect(split.body.errors).toBeUndefined();
  });

  it("refuses an operation whose estimated cost is over the budget, before any department is called", async () => {
    const histories = `query($ids: [ID!]!) { people(ids: $ids) { contributions { month } } }`;
    const twenty = Array.from({ length: 20 }, () => WANG_QIANG);
    const reached = social.arrivals.length;
    // 20 persons × (1 + 480 contributions, the list's @listSize)
    const over = await platform.query(histories, { ids: twenty });
    expect(over.status).toBe(400);
    expect(over.body.errors).toEqual([
      {
        message:
          "the estimated cost of this operation is 9,620; at most 5,000 per request (ask for fewer subjects, fewer list fields, or narrower lists)",
        extensions: { code: "LIMIT_EXCEEDED", limit: "cost", max: 5000, cost: 9620 },
      },
    ]);
    expect(over.body.data).toBeUndefined();
    expect(social.arrivals.length).toBe(reached);

    const within = await platform.query(histories, { ids: twenty.slice(0, 10) });
    expect(within.body.errors).toBeUndefined();
    const people = within.body.data?.people as Array<{ contributions: unknown[] }>;
    expect(people).toHaveLength(10);
    expect(people[0]?.contributions).toHaveLength(3);
    expect(social.arrivals.length).toBeGreaterThan(reached);
  });

  it("gives a desk registered with its own budget that budget", async () => {
    const { status, body } = await post(
      {
        query: `query($ids: [ID!]!) { people(ids: $ids) { contributions { month } } }`,
        variables: { ids: Array.from({ length: 20 }, () => WANG_QIANG) },
      },
      BULK,
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data.people).toHaveLength(20);
  });

  it("does not count a field the purpose withholds: it is not fetched", async () => {
    const { status, body } = await post(
      {
        query: `query($ids: [ID!]!) { people(ids: $ids) { alive contributions { month } } }`,
        variables: { ids: Array.from({ length: 20 }, () => WANG_QIANG) },
      },
      NARROW,
    );
    expect(status).toBe(200);
    expect(body.data.people).toHaveLength(20);
    expect(body.data.people[0]).toEqual({ alive: true, contributions: null });
    expect(body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("refuses a body larger than the limit with 413", async () => {
    const { status, body } = await post({
      query: "{ __typename }",
      variables: { pad: "x".repeat(25_000) },
    });
    expect(status).toBe(413);
    expect(body.errors?.[0]?.extensions).toEqual({ code: "LIMIT_EXCEEDED" });
  });
});

describe("rate limits per desk", () => {
  it("answers 429 with Retry-After once a desk has used its window, other desks unaffected", async () => {
    const query = { query: "{ __typename }" };
    expect((await post(query, THROTTLED)).status).toBe(200);
    expect((await post(query, THROTTLED)).status).toBe(200);
    const limited = await post(query, THROTTLED);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(limited.body).toEqual({
      errors: [
        {
          message: expect.stringContaining(
            "Rate limit of 2 requests per 60 s exceeded for desk throttled",
          ),
          extensions: { code: "RATE_LIMITED" },
        },
      ],
    });
    expect((await post(query)).status).toBe(200);
  });

  it("counts a desk, not a connection or an address", async () => {
    // Another key of nobody: refused by authentication before it could count against a desk.
    const stranger = await post({ query: "{ __typename }" }, { authorization: "Bearer nobody" });
    expect(stranger.status).toBe(401);
    // A second desk with the same limit, from the address whose first desk is spent, each request
    // on a connection of its own: its own two requests, then 429.
    const alone = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const request = httpRequest(
          platform.url,
          {
            method: "POST",
            agent: false,
            headers: { "content-type": "application/json", ...headers },
          },
          (response) => {
            response.resume();
            response.on("end", () => resolve(response.statusCode ?? 0));
          },
        );
        request.on("error", reject);
        request.end(JSON.stringify({ query: "{ __typename }" }));
      });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await alone(THROTTLED_TOO));
    expect(statuses).toEqual([200, 200, 429]);
  });
});

describe("persisted operations", () => {
  it("runs a registered operation sent by its hash alone", async () => {
    const { status, body } = await post(
      {
        variables: { id: ZHANG_WEI },
        extensions: { persistedQuery: { version: 1, sha256Hash: REGISTERED_HASH } },
      },
      SAFELISTED,
    );
    expect(status).toBe(200);
    expect(body).toEqual({ data: { person: { hasValidDriverLicense: true } } });
  });

  it("runs the registered document sent in full, for a restricted desk", async () => {
    const { body } = await post(
      { query: REGISTERED_OPERATION, variables: { id: ZHANG_WEI } },
      SAFELISTED,
    );
    expect(body.data).toEqual({ person: { hasValidDriverLicense: true } });
  });

  it("refuses any other document from a desk restricted to registered operations", async () => {
    const { status, body } = await post(
      { query: `{ person(id: "${ZHANG_WEI}") { name } }` },
      SAFELISTED,
    );
    expect(status).toBe(403);
    expect(body.errors?.[0]?.extensions).toEqual({ code: "PERSISTED_QUERY_NOT_IN_LIST" });
    expect(body.data).toBeUndefined();
  });

  it("lets unrestricted desks send any document", async () => {
    const { body } = await post({ query: `{ person(id: "${ZHANG_WEI}") { name } }` });
    expect(body.data).toEqual({ person: { name: "张伟" } });
  });

  it("answers an unknown hash and a hash that does not match the query with 400", async () => {
    const unknown = await post({
      extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]?.extensions).toEqual({ code: "PERSISTED_QUERY_NOT_FOUND" });
    const mismatch = await post({
      query: "{ __typename }",
      extensions: { persistedQuery: { version: 1, sha256Hash: REGISTERED_HASH } },
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.errors?.[0]?.extensions).toEqual({
      code: "PERSISTED_QUERY_HASH_MISMATCH",
    });
  });

  it("resolves a persisted operation sent by GET", async () => {
    const url = new URL(platform.url);
    url.searchParams.set("variables", JSON.stringify({ id: ZHANG_WEI }));
    url.searchParams.set(
      "extensions",
      JSON.stringify({ persistedQuery: { version: 1, sha256Hash: REGISTERED_HASH } }),
    );
    const response = await fetch(url, { headers: { ...SAFELISTED, accept: "application/json" } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { person: { hasValidDriverLicense: true } } });
  });
});
