/**
 * How the department client reads an answer: whole, however it is split on the wire; and never
 * past its size cap or its timeout, whatever a broken department sends. A real HTTP server
 * stands in for the department, so the client's own reading is what is tested.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { GraphQLDataSourceProcessOptions } from "@apollo/gateway/dist/datasources/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { departmentSecret } from "../../common/signing.ts";
import { DepartmentClient, type GatewayRequestContext } from "../../gateway/department-client.ts";
import { OPEN_PRINCIPAL } from "../../gateway/principal.ts";

/** What the stand-in does with the next request. */
let answer: (response: ServerResponse) => void;
let calls = 0;
let url = "";
const server = createServer((request, response) => {
  request.resume();
  request.on("end", () => {
    calls++;
    answer(response);
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const QUERY = `query Q__traffic__1($representations:[_Any!]!){_entities(representations:$representations){...on Person{echo}}}`;

/** Asks the stand-in for one entity through a client of its own; the warnings it logged. */
async function ask(options: { maxResponseBytes?: number; timeoutMs?: number } = {}) {
  const warnings: string[] = [];
  const client = new DepartmentClient({
    department: "traffic",
    url,
    secret: departmentSecret("traffic"),
    timeoutMs: options.timeoutMs ?? 2000,
    retries: 2,
    connections: 1,
    breakerResetMs: 1000,
    ...(options.maxResponseBytes ? { maxResponseBytes: options.maxResponseBytes } : {}),
  });
  const context: GatewayRequestContext = {
    requestId: "r",
    principal: OPEN_PRINCIPAL,
    unavailable: new Set(),
    answered: new Set(),
    log: { warn: (fields: { reason: string }) => warnings.push(fields.reason) },
  } as unknown as GatewayRequestContext;
  calls = 0;
  try {
    const response = await client.process({
      kind: "incoming operation",
      request: {
        query: QUERY,
        variables: { representations: [{ __typename: "Person", id: "a" }] },
      },
      context,
      incomingRequestContext: {},
      pathInIncomingRequest: ["person"],
    } as unknown as GraphQLDataSourceProcessOptions<GatewayRequestContext>);
    return { response, error: null, warnings };
  } catch (error) {
    return { response: null, error: error as Error & { extensions?: object }, warnings };
  } finally {
    await client.close();
  }
}

const ANSWER = JSON.stringify({ data: { _entities: [{ echo: "a" }] } });

describe("reading a department's answer", () => {
  it("joins an answer that arrives in many pieces, multi-byte characters split between them", async () => {
    const text = JSON.stringify({ data: { _entities: [{ echo: "张伟".repeat(5000) }] } });
    const bytes = Buffer.from(text);
    answer = (response) => {
      response.writeHead(200, { "content-type": "application/json" });
      // Pieces of 1,001 bytes: 张 and 伟 are three bytes each, so most pieces end inside one.
      let at = 0;
      const next = () => {
        if (at >= bytes.length) return void response.end();
        response.write(bytes.subarray(at, at + 1001));
        at += 1001;
        setImmediate(next);
      };
      next();
    };
    const { response } = await ask();
    expect(response).toEqual(JSON.parse(text));
  });

  it("gives up on an answer larger than its cap at once, without asking again", async () => {
    answer = (response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(`{"data":{"_entities":[{"echo":"${"x".repeat(200_000)}"}]}}`);
    };
    const { response, error, warnings } = await ask({ maxResponseBytes: 100_000 });
    expect(response).toBeNull();
    expect(error?.extensions).toEqual({ code: "DEPARTMENT_UNAVAILABLE", department: "traffic" });
    expect(warnings).toEqual(["the response is larger than 100000 bytes"]);
    expect(calls).toBe(1);
  });

  it("gives up on an answer still arriving at the timeout, asking again as after any timeout", async () => {
    answer = (response) => {
      response.writeHead(200, { "content-type": "application/json" });
      const timer = setInterval(() => response.write(" "), 20);
      response.on("close", () => clearInterval(timer));
    };
    const started = performance.now();
    const { error, warnings } = await ask({ timeoutMs: 200 });
    expect(error?.extensions).toEqual({ code: "DEPARTMENT_UNAVAILABLE", department: "traffic" });
    expect(warnings).toEqual(["the response was still arriving at the timeout"]);
    expect(calls).toBe(3);
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it("takes a 5xx for a failure worth retrying, and an answer after it", async () => {
    let failures = 1;
    answer = (response) => {
      if (failures-- > 0) return void response.writeHead(503).end("busy");
      response.writeHead(200, { "content-type": "application/json" }).end(ANSWER);
    };
    const { response } = await ask();
    expect(response).toEqual(JSON.parse(ANSWER));
    expect(calls).toBe(2);
  });

  it("fails a department that closes the connection mid-answer, with a code", async () => {
    answer = (response) => {
      response.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      response.write('{"data":');
      setTimeout(() => response.socket?.destroy(), 10);
    };
    const { error, warnings } = await ask();
    expect(error?.extensions).toEqual({ code: "DEPARTMENT_UNAVAILABLE", department: "traffic" });
    expect(warnings).toHaveLength(1);
    expect(calls).toBe(3);
  });
});
