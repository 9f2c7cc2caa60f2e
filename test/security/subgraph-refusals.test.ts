/**
 * No way around the gateway: a department refuses unsigned, wrongly signed and replayed requests
 * (test/subgraphs/signature.test.ts) — and logs each refusal, so that an attempt is visible.
 */
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { departmentSecret, SIGNATURE_HEADER, signBody } from "../../common/signing.ts";
import { buildHukouSubgraph } from "../../subgraphs/hukou/index.ts";
import { tempDataDir } from "../helpers.ts";

let app: FastifyInstance;
let data: ReturnType<typeof tempDataDir>;
const lines: Array<Record<string, unknown>> = [];
const body = JSON.stringify({ query: "{ _entities(representations: []) { __typename } }" });

beforeAll(async () => {
  data = tempDataDir();
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  app = await buildHukouSubgraph({ dataDir: data.dir, logger: { level: "warn", stream } });
});

afterAll(async () => {
  await app.close();
  data.remove();
});

function post(headers: Record<string, string>) {
  return app.inject({
    method: "POST",
    url: "/graphql",
    headers: { "content-type": "application/json", ...headers },
    payload: body,
    remoteAddress: "10.1.2.3",
  });
}

describe("refusals are logged", () => {
  it("logs an unsigned, a wrongly signed and a replayed request with the reason and the caller's address", async () => {
    expect((await post({})).statusCode).toBe(401);
    expect((await post({ [SIGNATURE_HEADER]: signBody("guessed", body) })).statusCode).toBe(401);
    const signature = signBody(departmentSecret("hukou"), body);
    expect((await post({ [SIGNATURE_HEADER]: signature })).statusCode).toBe(200);
    expect((await post({ [SIGNATURE_HEADER]: signature })).statusCode).toBe(401);

    const refusals = lines.filter(
      (line) => line.msg === "refused a request not signed by the gateway",
    );
    expect(refusals.map((line) => [line.signature, line.ip])).toEqual([
      ["missing", "10.1.2.3"],
      ["mismatch", "10.1.2.3"],
      ["replayed", "10.1.2.3"],
    ]);
    expect(refusals.every((line) => line.level === 40 && typeof line.reqId === "string")).toBe(
      true,
    );
  });
});
