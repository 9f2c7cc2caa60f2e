/** Departments answer only the gateway: unsigned, mis-signed, stale and replayed requests get 401. */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  departmentSecret,
  SIGNATURE_HEADER,
  SignatureVerifier,
  signBody,
} from "../../common/signing.ts";
import { buildHukouSubgraph } from "../../subgraphs/hukou/index.ts";
import { tempDataDir } from "../helpers.ts";

let app: FastifyInstance;
let data: ReturnType<typeof tempDataDir>;
const body = JSON.stringify({ query: "{ _service { sdl } }" });

beforeAll(async () => {
  data = tempDataDir();
  app = await buildHukouSubgraph({ dataDir: data.dir, logger: false });
});

afterAll(async () => {
  await app.close();
  data.remove();
});

function post(headers: Record<string, string>, payload = body) {
  return app.inject({
    method: "POST",
    url: "/graphql",
    headers: { "content-type": "application/json", ...headers },
    payload,
  });
}

describe("gateway signature on department requests", () => {
  it("answers a request signed with the department's secret", async () => {
    const response = await post({ [SIGNATURE_HEADER]: signBody(departmentSecret("hukou"), body) });
    expect(response.statusCode).toBe(200);
    expect(response.json().data._service.sdl).toContain("type Person");
  });

  it("refuses an unsigned request: _service and _entities are not reachable around the gateway", async () => {
    const response = await post({});
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({
      errors: [
        {
          message: "This subgraph answers only the Mianzheng gateway (signature missing)",
          extensions: { code: "UNAUTHENTICATED" },
        },
      ],
    });
  });

  it("refuses an unsigned request to the GraphQL route by any spelling of its path", async () => {
    for (const url of ["/%67raphql", "/graphq%6C", "/graphql?x=1"]) {
      const posted = await app.inject({
        method: "POST",
        url,
        headers: { "content-type": "application/json" },
        payload: body,
      });
      expect(posted.statusCode, url).toBe(401);
    }
    const got = await app.inject({
      method: "GET",
      url: `/%67raphql?query=${encodeURIComponent("{ _service { sdl } }")}`,
    });
    expect(got.statusCode).toBe(401);
    // The probes need no signature.
    expect((await app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    expect((await app.inject({ method: "GET", url: "/ready" })).statusCode).toBe(200);
  });

  it("refuses a body that is not JSON as the caller's mistake, not as an internal error", async () => {
    const response = await post({}, "{bad");
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([
      { message: "Request body is not valid JSON", extensions: { code: "BAD_USER_INPUT" } },
    ]);
  });

  it("refuses another department's signature and an altered body", async () => {
    const wrongSecret = await post({ [SIGNATURE_HEADER]: signBody(departmentSecret("tax"), body) });
    expect(wrongSecret.statusCode).toBe(401);
    const signature = signBody(departmentSecret("hukou"), body);
    const altered = await post(
      { [SIGNATURE_HEADER]: signature },
      body.replace("sdl", "sdl __typename"),
    );
    expect(altered.statusCode).toBe(401);
  });

  it("refuses a replayed request", async () => {
    const signature = signBody(departmentSecret("hukou"), body);
    expect((await post({ [SIGNATURE_HEADER]: signature })).statusCode).toBe(200);
    const replay = await post({ [SIGNATURE_HEADER]: signature });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().errors[0].message).toContain("replayed");
  });

  it("refuses a stale signature", async () => {
    const stale = signBody(departmentSecret("hukou"), body, Date.now() - 60_000);
    const response = await post({ [SIGNATURE_HEADER]: stale });
    expect(response.statusCode).toBe(401);
    expect(response.json().errors[0].message).toContain("stale");
  });

  it("takes two requests of the same body in the same millisecond for two, not a replay", () => {
    const verifier = new SignatureVerifier("s", 1000);
    const at = 2_000_000;
    const first = signBody("s", "same body", at);
    const second = signBody("s", "same body", at);
    expect(second).not.toBe(first);
    expect(verifier.check(first, "same body", at)).toBeNull();
    expect(verifier.check(second, "same body", at)).toBeNull();
    expect(verifier.check(second, "same body", at)).toBe("replayed");
  });

  it("forgets signatures once they are outside the window", () => {
    const verifier = new SignatureVerifier("s", 1000);
    const at = 1_000_000;
    const header = signBody("s", "x", at);
    expect(verifier.check(header, "x", at)).toBeNull();
    expect(verifier.check(header, "x", at + 10)).toBe("replayed");
    expect(verifier.check(header, "x", at + 5000)).toBe("stale");
  });
});
