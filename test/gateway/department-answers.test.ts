/**
 * A department that answers, but not as the contract says: a body that is not a GraphQL
 * response, entities not one per representation, a value of the wrong kind, an answer trickling
 * in. The desk gets the other departments' facts and a coded error naming the department — never
 * a JavaScript message, never a 400 that blames the desk, never a silent null.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";

/** What the stand-in traffic department does with the next requests. */
let behaviour: (
  request: { representations: unknown[] },
  response: import("node:http").ServerResponse,
) => void;

let server: Server;
let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk) => {
      text += chunk;
    });
    request.on("end", () => {
      const { variables } = JSON.parse(text) as { variables: { representations?: unknown[] } };
      behaviour({ representations: variables.representations ?? [] }, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  data = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir, {
    standIns: { traffic: { url, timeoutMs: 300 } },
    // Every case starts with the circuit closed: the breaker is tested elsewhere.
    config: { breakerResetMs: 1 },
  });
}, 60_000);

afterAll(() =>
  tearDown(
    platform,
    () => {
      server.closeAllConnections();
      server.close();
    },
    data.remove,
  ),
);

const json = (body: unknown) => (_: unknown, response: import("node:http").ServerResponse) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
};

/** The register's fact under one alias, traffic's under another: each survives the other. */
const QUERY = `{ person(id: "${ZHANG_WEI}") { name }
  licence: person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: "2026-11-01") } }`;

const JAVASCRIPT =
  /Cannot read|is not iterable|Cannot create property|undefined|TypeError|at .*\.ts/;

describe("a department that answers out of contract", () => {
  const malformed: Array<[string, typeof behaviour]> = [
    ["the body null", json(null)],
    ["a list for a body", json([])],
    ["errors that are not a list", json({ data: null, errors: 5 })],
    ["an error that is not an object", json({ data: { _entities: [null] }, errors: [null] })],
    ["_entities that is not a list", json({ data: { _entities: { a: 1 } } })],
    ["an entity that is a number", json({ data: { _entities: [1] } })],
    ["fewer entities than representations", json({ data: { _entities: [] } })],
    [
      "HTML",
      (_, response) => response.writeHead(200, { "content-type": "text/html" }).end("<h1>hi</h1>"),
    ],
  ];
  for (const [what, answer] of malformed) {
    it(`answering ${what}: the other facts and DEPARTMENT_UNAVAILABLE naming traffic`, async () => {
      behaviour = answer;
      const { status, body } = await platform.query(QUERY);
      expect(status).toBe(200);
      expect(body.data).toEqual({ person: { name: "张伟" }, licence: null });
      expect(body.errors?.map((error) => error.extensions)).toEqual([
        { code: "DEPARTMENT_UNAVAILABLE", department: "traffic" },
      ]);
      expect(JSON.stringify(body)).not.toMatch(JAVASCRIPT);
    });
  }

  it("a value of the wrong kind is nulled and reported with a code; the rest of the answer stands", async () => {
    behaviour = ({ representations }, response) =>
      json({
        data: { _entities: representations.map(() => ({ __typename: "Person", vehicles: {} })) },
      })(null, response);
    const { status, body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { name } cars: person(id: "${ZHANG_WEI}") { vehicles { plate } } }`,
    );
    expect(status).toBe(200);
    expect(body.data).toEqual({ person: { name: "张伟" }, cars: null });
    expect(body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringContaining("Invalid non-list value"),
        path: ["cars", "vehicles"],
        extensions: { code: "INVALID_GRAPHQL" },
      }),
    ]);
  });

  /** Traffic answering every person with a null for the non-null licence fact. */
  const nullLicences: typeof behaviour = ({ representations }, response) =>
    json({
      data: {
        _entities: representations.map(() => ({
          __typename: "Person",
          hasValidDriverLicense: null,
        })),
      },
    })(null, response);

  it("an error's stack trace and other details stay behind; its code and message pass", async () => {
    behaviour = json({
      data: { _entities: [null] },
      errors: [
        {
          message: "licence register unreadable",
          path: ["_entities", 0, "hasValidDriverLicense"],
          extensions: {
            code: "INTERNAL_SERVER_ERROR",
            exception: { stacktrace: ["Error: SQLITE_IOERR at /srv/traffic/db.ts:12:3"] },
            host: "http://10.0.0.5:4002",
          },
        },
      ],
    });
    const { body } = await platform.query(QUERY);
    expect(body.data).toEqual({ person: { name: "张伟" }, licence: null });
    expect(body.errors?.[0]).toMatchObject({
      message: "licence register unreadable",
      extensions: { code: "INTERNAL_SERVER_ERROR", serviceName: "traffic" },
    });
    expect(JSON.stringify(body)).not.toMatch(/stacktrace|SQLITE_IOERR|10\.0\.0\.5/);
  });

  it("a null for a non-null fact comes with an error, not as a silent null", async () => {
    behaviour = nullLicences;
    const { body } = await platform.query(QUERY);
    expect(body.data).toEqual({ person: { name: "张伟" }, licence: null });
    expect(body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringContaining("Cannot return null for non-nullable"),
        path: ["licence", "hasValidDriverLicense"],
      }),
    ]);
  });

  it("a null for a non-null fact is reported also when another department's error is in the answer", async () => {
    behaviour = nullLicences;
    const { body } = await platform.query(
      `${QUERY.slice(0, -1)} refused: person(id: "${ZHANG_WEI}") { hukouWithin(region: "11") } }`,
    );
    expect(body.data).toEqual({ person: { name: "张伟" }, licence: null, refused: null });
    // The register's refusal explains only its own null; the licence's null needs its own word.
    expect(body.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          path: ["refused", "hukouWithin"],
          extensions: expect.objectContaining({ code: "BAD_USER_INPUT" }),
        }),
        expect.objectContaining({
          message: expect.stringContaining("Cannot return null for non-nullable"),
          path: ["licence", "hasValidDriverLicense"],
        }),
      ]),
    );
    expect(body.errors).toHaveLength(2);
  });

  it("an answer trickling in is cut off at the department's timeout", async () => {
    behaviour = (_, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      const timer = setInterval(() => response.write(" "), 50);
      response.on("close", () => clearInterval(timer));
    };
    const started = performance.now();
    const { body } = await platform.query(QUERY);
    expect(body.data).toEqual({ person: { name: "张伟" }, licence: null });
    expect(body.errors?.[0]?.extensions).toEqual({
      code: "DEPARTMENT_UNAVAILABLE",
      department: "traffic",
    });
    // Three attempts of 300 ms and their backoff, not the minutes the trickle would last.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
