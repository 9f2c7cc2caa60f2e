/**
 * The GraphQL over HTTP server audits (graphql-http) against the gateway and one department's
 * subgraph: every MUST audit passes.
 */
import { serverAudits } from "graphql-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { departmentSecret, SIGNATURE_HEADER, signBody } from "../../common/signing.ts";
import { writeFixtures } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir);
});

afterAll(() => tearDown(platform, data.remove));

/** A fetch that signs its body as the gateway does: the subgraph serves nobody else. */
const signedFetch: typeof fetch = async (input, init) => {
  const body = typeof init?.body === "string" ? init.body : "";
  const headers = new Headers(init?.headers);
  headers.set(SIGNATURE_HEADER, signBody(departmentSecret("hukou"), body));
  return fetch(input, { ...init, headers });
};

/** A fetch that authenticates as the development desk: the gateway answers desks only. */
const deskFetch: typeof fetch = async (input, init) => {
  const headers = new Headers(init?.headers);
  for (const [name, value] of Object.entries(DEV_DESK)) headers.set(name, value);
  return fetch(input, { ...init, headers });
};

describe("graphql-http audits: gateway", () => {
  for (const audit of serverAudits({ url: () => platform.url, fetchFn: deskFetch })) {
    if (!audit.name.startsWith("MUST")) continue;
    it(audit.name, async () => {
      const result = await audit.fn();
      expect(result.status === "ok" ? "ok" : `${result.status}: ${result.reason}`).toBe("ok");
    });
  }
});

describe("graphql-http audits: hukou subgraph (signed requests)", () => {
  const url = () => `${platform.departments.hukou.listeningOrigin}/graphql`;
  for (const audit of serverAudits({ url, fetchFn: signedFetch })) {
    if (!audit.name.startsWith("MUST")) continue;
    it(audit.name, async () => {
      const result = await audit.fn();
      expect(result.status === "ok" ? "ok" : `${result.status}: ${result.reason}`).toBe("ok");
    });
  }
});
