/**
 * Coalescing in the department client: concurrent planner fetches to one department become one
 * HTTP request, and every caller still gets exactly its own answer (the `_entities` contract: one
 * entity per representation, in order; errors renumbered for the caller they belong to).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { GraphQLDataSourceProcessOptions } from "@apollo/gateway/dist/datasources/types.js";
import type { FastifyInstance } from "fastify";
import type { GraphQLError } from "graphql";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { departmentSecret } from "../../common/signing.ts";
import {
  DepartmentClient,
  type DepartmentClientOptions,
  type GatewayRequestContext,
} from "../../gateway/department-client.ts";
import { OPEN_PRINCIPAL } from "../../gateway/principal.ts";
import { departmentModules } from "../../subgraphs/registry.ts";
import { LI_NA, WANG_QIANG, writeFixtures, ZHANG_LAO, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { Relay } from "../relay.ts";

interface Received {
  query: string;
  variables: Record<string, unknown>;
  operationName?: string;
}

/**
 * A stand-in department over plain HTTP that records every request. `_entities` answers each
 * representation `{ __typename, id }` with `{ echo: id }`; an id starting with "bad" makes that
 * entity null with an error at its path; "broken" in a root variable nulls the whole answer.
 */
class StandIn {
  readonly received: Received[] = [];
  private server: Server | null = null;
  url = "";

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk) => {
        text += chunk;
      });
      request.on("end", () => {
        const body = JSON.parse(text) as Received;
        this.received.push(body);
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(this.answer(body)));
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  }

  private answer({ query, variables }: Received): object {
    if (query.includes("_entities")) {
      const errors: object[] = [];
      const entities = (variables.representations as Array<{ id: string }>).map((rep, index) => {
        if (!rep.id.startsWith("bad")) return { echo: rep.id, day: variables.day ?? null };
        errors.push({ message: `bad ${rep.id}`, path: ["_entities", index, "echo"] });
        return null;
      });
      if (query.includes("warn")) errors.push({ message: "a warning without a path" });
      return { data: { _entities: entities }, ...(errors.length ? { errors } : {}) };
    }
    // Root operations: each root field `<alias?>: person(id: $x)` answered from its variable.
    if (Object.values(variables).some((value) => value === "broken")) {
      return { data: null, errors: [{ message: "non-null root field failed", path: ["x"] }] };
    }
    const data: Record<string, unknown> = {};
    const errors: object[] = [];
    for (const match of query.matchAll(/(?:(\w+):\s*)?person\(id:\s*\$(\w+)\)/g)) {
      const key = match[1] ?? "person";
      const id = variables[match[2] as string] as string;
      if (id.startsWith("bad")) {
        data[key] = null;
        errors.push({ message: `bad ${id}`, path: [key, "name"] });
      } else data[key] = { id, name: `name of ${id}` };
    }
    return errors.length ? { data, errors } : { data };
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

function client(url: string, overrides: Partial<DepartmentClientOptions> = {}): DepartmentClient {
  return new DepartmentClient({
    department: "traffic",
    url,
    secret: departmentSecret("traffic"),
    timeoutMs: 2000,
    retries: 0,
    connections: 4,
    breakerResetMs: 1000,
    ...overrides,
  });
}

function context(requestId: string): GatewayRequestContext {
  return {
    requestId,
    principal: OPEN_PRINCIPAL,
    unavailable: new Set(),
    answered: new Set(),
    log: { warn: () => {} },
  };
}

/** What the planner hands a data source for one fetch. */
function fetchOf(
  query: string,
  variables: Record<string, unknown>,
  requestId = "r",
  path: Array<string | number> = ["person"],
) {
  return {
    kind: "incoming operation",
    request: { query, variables, operationName: /^query (\w+)/.exec(query)?.[1] },
    context: context(requestId),
    incomingRequestContext: {},
    pathInIncomingRequest: path,
  } as unknown as GraphQLDataSourceProcessOptions<GatewayRequestContext>;
}

const ENTITIES = `query Q__traffic__1($representations:[_Any!]!){_entities(representations:$representations){...on Person{echo}}}`;
const ENTITIES_ON_DAY = `query Q__traffic__1($representations:[_Any!]!$day:Date){_entities(representations:$representations){...on Person{echo(on:$day)}}}`;
const ROOT = `query Q__hukou__0($id:ID!){person(id:$id){__typename id name}}`;

const reps = (...ids: string[]) => ids.map((id) => ({ __typename: "Person", id }));

describe("coalescing against a stand-in department", () => {
  const department = new StandIn();
  let traffic: DepartmentClient;

  beforeAll(async () => {
    await department.start();
  });
  beforeEach(() => {
    department.received.length = 0;
    traffic = client(department.url);
  });
  afterEach(() => traffic.close());
  afterAll(() => department.stop());

  it("sends concurrent entity fetches as one _entities call and gives each caller its slice", async () => {
    const answers = await Promise.all([
      traffic.process(fetchOf(ENTITIES, { representations: reps("a1", "a2") })),
      traffic.process(fetchOf(ENTITIES, { representations: reps("b1") })),
      traffic.process(fetchOf(ENTITIES, { representations: reps("c1", "c2", "c3") })),
    ]);
    expect(department.received).toHaveLength(1);
    expect(department.received[0]?.query).toBe(ENTITIES);
    expect(department.received[0]?.variables.representations).toEqual(
      reps("a1", "a2", "b1", "c1", "c2", "c3"),
    );
    expect(answers.map((answer) => answer.data)).toEqual([
      {
        _entities: [
          { echo: "a1", day: null },
          { echo: "a2", day: null },
        ],
      },
      { _entities: [{ echo: "b1", day: null }] },
      {
        _entities: [
          { echo: "c1", day: null },
          { echo: "c2", day: null },
          { echo: "c3", day: null },
        ],
      },
    ]);
    expect(answers.every((answer) => answer.errors === undefined)).toBe(true);
  });

  it("gathers fetches made in the next turns of the event loop into the same call", async () => {
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    const gathered = async (turns: number) => {
      department.received.length = 0;
      const gathering = client(department.url, { gatherTurns: turns });
      const first = gathering.process(fetchOf(ENTITIES, { representations: reps("a") }));
      await nextTurn();
      const second = gathering.process(fetchOf(ENTITIES, { representations: reps("b") }));
      const answers = await Promise.all([first, second]);
      await gathering.close();
      expect(answers.map((answer) => answer.data)).toEqual([
        { _entities: [{ echo: "a", day: null }] },
        { _entities: [{ echo: "b", day: null }] },
      ]);
      return department.received.length;
    };
    // One turn: the second fetch comes too late for the first call; by default it joins it.
    expect(await gathered(1)).toBe(2);
    expect(await gathered(2)).toBe(1);
    department.received.length = 0;
    const first = traffic.process(fetchOf(ENTITIES, { representations: reps("c") }));
    await nextTurn();
    await nextTurn();
    await Promise.all([first, traffic.process(fetchOf(ENTITIES, { representations: reps("d") }))]);
    expect(department.received).toHaveLength(1);
  });

  it("sends a full batch at once instead of gathering for it", async () => {
    // Ten million turns would take seconds: a full batch (here two representations) must not
    // wait for them, and no open batch is left behind to wait either.
    const patient = client(department.url, { gatherTurns: 10_000_000, maxBatchSize: 2 });
    const answer = await patient.process(fetchOf(ENTITIES, { representations: reps("a", "b") }));
    await patient.close();
    expect(answer.data).toEqual({
      _entities: [
        { echo: "a", day: null },
        { echo: "b", day: null },
      ],
    });
    expect(department.received).toHaveLength(1);
  }, 2000);

  it("keeps fetches with different other variables apart", async () => {
    const answers = await Promise.all([
      traffic.process(fetchOf(ENTITIES_ON_DAY, { day: "2026-11-01", representations: reps("a") })),
      traffic.process(fetchOf(ENTITIES_ON_DAY, { day: "2026-12-01", representations: reps("b") })),
      traffic.process(fetchOf(ENTITIES_ON_DAY, { day: "2026-11-01", representations: reps("c") })),
    ]);
    expect(department.received).toHaveLength(2);
    expect(answers.map((answer) => answer.data)).toEqual([
      { _entities: [{ echo: "a", day: "2026-11-01" }] },
      { _entities: [{ echo: "b", day: "2026-12-01" }] },
      { _entities: [{ echo: "c", day: "2026-11-01" }] },
    ]);
  });

  it("renumbers entity errors for the caller they belong to and gives pathless ones to all", async () => {
    const warn = ENTITIES.replace("{echo}", "{echo warn:echo}");
    const [first, second] = await Promise.all([
      traffic.process(fetchOf(warn, { representations: reps("a", "bad-a") })),
      traffic.process(fetchOf(warn, { representations: reps("bad-b", "b", "bad-c") })),
    ]);
    expect(department.received).toHaveLength(1);
    expect(first?.data).toEqual({ _entities: [{ echo: "a", day: null }, null] });
    expect(first?.errors).toEqual([
      { message: "bad bad-a", path: ["_entities", 1, "echo"] },
      { message: "a warning without a path" },
    ]);
    expect(second?.data).toEqual({ _entities: [null, { echo: "b", day: null }, null] });
    expect(second?.errors).toEqual([
      { message: "bad bad-b", path: ["_entities", 0, "echo"] },
      { message: "bad bad-c", path: ["_entities", 2, "echo"] },
      { message: "a warning without a path" },
    ]);
  });

  it("merges root fetches of the same operation, each caller's fields aliased and variables renamed", async () => {
    const answers = await Promise.all(
      ["p1", "bad-p2", "p3"].map((id) => traffic.process(fetchOf(ROOT, { id }))),
    );
    expect(department.received).toHaveLength(1);
    const merged = department.received[0] as Received;
    // Each caller's slot (`rootSlots`) asked for by its own flag.
    expect(merged.variables).toEqual({
      _0_id: "p1",
      _0_: true,
      _1_id: "bad-p2",
      _1_: true,
      _2_id: "p3",
      _2_: true,
    });
    expect(merged.query).toContain("_1_person: person(id: $_1_id) @include(if: $_1_)");
    expect(merged.query).toContain("$_1_: Boolean!");
    expect(answers[0]).toEqual({ data: { person: { id: "p1", name: "name of p1" } } });
    expect(answers[1]).toEqual({
      data: { person: null },
      errors: [{ message: "bad bad-p2", path: ["person", "name"] }],
    });
    expect(answers[2]).toEqual({ data: { person: { id: "p3", name: "name of p3" } } });
  });

  it("skips the slots past the callers, and gives no caller what is said about them", async () => {
    const ids = ["p1", "p2", "p3", "p4", "bad-p5"];
    const answers = await Promise.all(ids.map((id) => traffic.process(fetchOf(ROOT, { id }))));
    expect(department.received).toHaveLength(1);
    // Six slots for five callers: the sixth repeats the last caller's variables, switched off.
    const merged = department.received[0] as Received;
    expect(merged.variables).toMatchObject({ _4_id: "bad-p5", _5_id: "bad-p5", _5_: false });
    expect(merged.query).toContain("_5_person: person(id: $_5_id) @include(if: $_5_)");
    // The stand-in ignores @include: it answers the empty slot with data and an error, which
    // belong to nobody.
    expect(answers.slice(0, 4)).toEqual(
      ids.slice(0, 4).map((id) => ({ data: { person: { id, name: `name of ${id}` } } })),
    );
    expect(answers[4]).toEqual({
      data: { person: null },
      errors: [{ message: "bad bad-p5", path: ["person", "name"] }],
    });
  });

  it("asks each caller again on its own when the merged answer lost its data", async () => {
    const answers = await Promise.all(
      ["p1", "broken", "p3"].map((id) => traffic.process(fetchOf(ROOT, { id }))),
    );
    // One merged request, then one per caller.
    expect(department.received).toHaveLength(4);
    expect(answers[0]?.data).toEqual({ person: { id: "p1", name: "name of p1" } });
    expect(answers[1]?.data).toBeNull();
    expect(answers[2]?.data).toEqual({ person: { id: "p3", name: "name of p3" } });
  });

  it("sends each fetch alone when coalescing is off", async () => {
    const alone = client(department.url, { coalesce: false });
    await Promise.all([
      alone.process(fetchOf(ENTITIES, { representations: reps("a") })),
      alone.process(fetchOf(ENTITIES, { representations: reps("b") })),
    ]);
    await alone.close();
    expect(department.received).toHaveLength(2);
  });

  it("fails every caller of a batch with its own path when the department is down", async () => {
    // A department that has died: every connection to it is cut.
    const dead = new Relay();
    await dead.start();
    dead.down();
    const down = client(dead.url);
    const contexts = [context("r1"), context("r2")];
    const results = await Promise.allSettled(
      contexts.map((ctx, index) =>
        down.process({
          ...fetchOf(
            ENTITIES,
            { representations: reps(`x${index}`) },
            ctx.requestId,
            index === 0 ? ["person", "spouse"] : ["people", "@", "spouse"],
          ),
          context: ctx,
        } as GraphQLDataSourceProcessOptions<GatewayRequestContext>),
      ),
    );
    await down.close();
    await dead.close();
    expect(dead.connections).toBeGreaterThan(0);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    const errors = results.map(
      (result) => (result as PromiseRejectedResult).reason as GraphQLError,
    );
    expect(errors.map((error) => error.extensions.code)).toEqual([
      "DEPARTMENT_UNAVAILABLE",
      "DEPARTMENT_UNAVAILABLE",
    ]);
    // A list's items (`@`) all miss the facts: the path ends at the list.
    expect(errors.map((error) => error.path)).toEqual([["person", "spouse"], ["people"]]);
    expect(contexts.every((ctx) => ctx.unavailable.has("traffic"))).toBe(true);
  });
});

describe("coalescing against real subgraphs", () => {
  let data: ReturnType<typeof tempDataDir>;
  let traffic: FastifyInstance;
  let hukou: FastifyInstance;
  let trafficClient: DepartmentClient;
  let hukouClient: DepartmentClient;
  /** The callers each call to hukou served. */
  const hukouCalls: number[] = [];

  beforeAll(async () => {
    data = tempDataDir();
    writeFixtures(data.dir);
    traffic = await departmentModules.traffic.build({ dataDir: data.dir, logger: false });
    hukou = await departmentModules.hukou.build({ dataDir: data.dir, logger: false });
    trafficClient = client(`${await traffic.listen({ port: 0, host: "127.0.0.1" })}/graphql`);
    hukouClient = client(`${await hukou.listen({ port: 0, host: "127.0.0.1" })}/graphql`, {
      department: "hukou",
      secret: departmentSecret("hukou"),
      observer: { called: (_seconds, _outcome, callers) => hukouCalls.push(callers), retried() {} },
    });
  });
  afterAll(async () => {
    await trafficClient.close();
    await hukouClient.close();
    await traffic.close();
    await hukou.close();
    data.remove();
  });

  const licence = `query Q__traffic__1($representations:[_Any!]!){_entities(representations:$representations){...on Person{hasValidDriverLicense(on:"2026-11-01")}}}`;
  const names = `query Q__hukou__0($id:ID!){person(id:$id){__typename id name}}`;
  const persons = [ZHANG_WEI, LI_NA, WANG_QIANG, ZHANG_LAO];

  it("answers concurrent entity fetches exactly as it answers them one by one", async () => {
    const one = async (ids: string[]) =>
      (await trafficClient.process(fetchOf(licence, { representations: reps(...ids) }))).data;
    const alone = [];
    for (const ids of [[ZHANG_WEI], [LI_NA, WANG_QIANG], [ZHANG_LAO]]) alone.push(await one(ids));
    const together = await Promise.all([[ZHANG_WEI], [LI_NA, WANG_QIANG], [ZHANG_LAO]].map(one));
    expect(together).toEqual(alone);
    expect(alone[0]).toEqual({ _entities: [{ hasValidDriverLicense: true }] });
  });

  it("answers concurrent root fetches exactly as it answers them one by one", async () => {
    const one = async (id: string) => (await hukouClient.process(fetchOf(names, { id }))).data;
    const alone = [];
    for (const id of persons) alone.push(await one(id));
    expect(await Promise.all(persons.map(one))).toEqual(alone);
    // Five callers in six slots, the empty one skipped: one call, whose answer served all five
    // (a merged text the department refused would have been followed by five calls).
    const five = [...persons, ZHANG_WEI];
    hukouCalls.length = 0;
    expect(await Promise.all(five.map(one))).toEqual([...alone, alone[0]]);
    expect(hukouCalls).toEqual([5]);
    expect(alone[0]).toEqual({ person: { __typename: "Person", id: ZHANG_WEI, name: "张伟" } });
  });

  it("keeps a response key named __proto__ when root fetches are merged", async () => {
    const proto = `query Q__hukou__0($id:ID!){__proto__:person(id:$id){name}}`;
    const together = await Promise.all(
      [ZHANG_WEI, LI_NA].map(
        async (id) => (await hukouClient.process(fetchOf(proto, { id }))).data,
      ),
    );
    expect(together.map((data) => JSON.stringify(data))).toEqual([
      '{"__proto__":{"name":"张伟"}}',
      '{"__proto__":{"name":"李娜"}}',
    ]);
  });

  it("keeps one caller's malformed argument from costing the others their answer", async () => {
    const [good, bad] = await Promise.all([
      hukouClient.process(fetchOf(names, { id: ZHANG_WEI })),
      hukouClient.process(fetchOf(names, { id: "110105198503121016" })),
    ]);
    expect(good?.data).toEqual({ person: { __typename: "Person", id: ZHANG_WEI, name: "张伟" } });
    expect(good?.errors).toBeUndefined();
    expect(bad?.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(bad?.errors?.[0]?.path).toEqual(["person"]);
  });
});
