/** The federated graph end to end: real gateway, six real subgraphs, signed HTTP between them. */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HEBEI_COMPANY,
  LI_NA,
  PUBLISHED_EXAMPLE,
  WANG_QIANG,
  writeFixtures,
  ZHANG_COMPANY,
  ZHANG_LAO,
  ZHANG_WEI,
  ZHANG_XIAOMING,
} from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
/** The household register is reached through a relay, to see what the gateway sends it. */
const hukou = new Relay();

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir, {
    relays: { hukou },
  });
});

afterAll(() => tearDown(platform, data.remove));

describe("one request across departments", () => {
  it("answers name, hukou region, licence validity, marital status and companies from five departments", async () => {
    const { status, body } = await platform.query(
      `query PersonFacts($id: ID!) {
        person(id: $id) {
          id name hukouRegion { code name } hasValidDriverLicense(on: "2026-11-01")
          maritalStatus(on: "2026-11-01") legalRepresentativeOf { uscc name }
        }
      }`,
      { id: ZHANG_WEI },
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      person: {
        id: ZHANG_WEI,
        name: "张伟",
        hukouRegion: { code: "110105", name: "北京市朝阳区" },
        hasValidDriverLicense: true,
        maritalStatus: "MARRIED",
        legalRepresentativeOf: [{ uscc: ZHANG_COMPANY, name: "北京张氏科技有限公司" }],
      },
    });
  });

  it("follows references between departments: spouse, parent, company's representative", async () => {
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") {
          spouse(on: "2026-11-01") { id name }
          isChildOf(parentId: "${ZHANG_LAO}")
          legalRepresentativeOf { legalRepresentative { id name } vatTotal(year: 2025) vehicleCount(on: "2026-11-01") }
        }
        child: person(id: "${ZHANG_XIAOMING}") { isChildOf(parentId: "${ZHANG_WEI}") ageOn(on: "2026-11-01") }
      }`,
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      person: {
        spouse: { id: LI_NA, name: "李娜" },
        isChildOf: true,
        legalRepresentativeOf: [
          {
            legalRepresentative: { id: ZHANG_WEI, name: "张伟" },
            vatTotal: "60000.00",
            vehicleCount: 1,
          },
        ],
      },
      child: { isChildOf: true, ageOn: 14 },
    });
  });

  it("uses a variable's default on every request, not only the first", async () => {
    // GraphiQL opens with such a query: pressing Run twice must answer twice.
    const query = `query Defaulted($id: ID! = "${ZHANG_WEI}", $ids: [ID!]! = ["${LI_NA}"]) {
      person(id: $id) { name maritalStatus(on: "2026-11-01") }
      people(ids: $ids) { name }
    }`;
    // An ID default written as a number is its 18 digits, not the nearest double.
    const numeric = await platform.query(
      `query Numeric($id: ID! = ${LI_NA}) { person(id: $id) { id name } }`,
    );
    expect(numeric.body).toEqual({ data: { person: { id: LI_NA, name: "李娜" } } });
    for (const variables of [undefined, undefined, { id: LI_NA }, {}]) {
      const { body } = await platform.query(query, variables);
      expect(body.errors).toBeUndefined();
      expect(body.data).toEqual({
        person: { name: variables?.id ? "李娜" : "张伟", maritalStatus: "MARRIED" },
        people: [{ name: "李娜" }],
      });
    }
  });

  it("answers people(ids:) in the order asked, null where the register has no such person", async () => {
    const unknown = "110105200001010016";
    const { body } = await platform.query(
      `query($ids: [ID!]!) { people(ids: $ids) { id alive } }`,
      {
        ids: [WANG_QIANG, unknown, ZHANG_LAO, PUBLISHED_EXAMPLE.toLowerCase()],
      },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      people: [
        { id: WANG_QIANG, alive: true },
        null,
        { id: ZHANG_LAO, alive: false },
        { id: PUBLISHED_EXAMPLE, alive: true },
      ],
    });
  });

  it("answers organizations with facts from market, tax and traffic", async () => {
    const { body } = await platform.query(
      `{ organizations(usccs: ["${ZHANG_COMPANY}", "${HEBEI_COMPANY}", "91110000MA0000000H"]) {
          uscc status region { code name } ownsVehicle(on: "2026-11-01") vatTotal(year: 2025, region: "110000")
        } }`,
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      organizations: [
        {
          uscc: ZHANG_COMPANY,
          status: "ACTIVE",
          region: { code: "110105", name: "北京市朝阳区" },
          ownsVehicle: true,
          vatTotal: "60000.00",
        },
        {
          uscc: HEBEI_COMPANY,
          status: "REVOKED",
          region: { code: "130102", name: "河北省石家庄市长安区" },
          ownsVehicle: false,
          vatTotal: "0.00",
        },
        null,
      ],
    });
  });
});

describe("bad input", () => {
  it("rejects a malformed id with BAD_USER_INPUT naming the argument", async () => {
    const { body } = await platform.query(`{ person(id: "110105198503121016") { id } }`);
    expect(body.data).toEqual({ person: null });
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "id" });
  });

  it("names the position of a malformed element of people(ids:)", async () => {
    const { body } = await platform.query(`{ people(ids: ["${ZHANG_WEI}", "12345"]) { id } }`);
    expect(body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "ids[1]",
    });
  });

  it("points a department's refusal of an argument at the fact, alone", async () => {
    // The gateway takes any month; social refuses one before 1900, for one person or each of a list.
    const one = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { alive consecutiveInsuredMonths(region: "110000", upTo: "1800-01") } }`,
    );
    expect(one.body.data).toEqual({ person: null });
    expect(one.body.errors).toEqual([
      expect.objectContaining({
        path: ["person", "consecutiveInsuredMonths"],
        extensions: expect.objectContaining({ code: "BAD_USER_INPUT", argument: "upTo" }),
      }),
    ]);
    const list = await platform.query(
      `{ people(ids: ["${ZHANG_WEI}", "${LI_NA}"]) { consecutiveInsuredMonths(region: "110000", upTo: "1800-01") } }`,
    );
    expect(list.body.errors?.map((error) => error.path)).toEqual([
      ["people", 0, "consecutiveInsuredMonths"],
      ["people", 1, "consecutiveInsuredMonths"],
    ]);
  });

  it("rejects a malformed uscc (wrong check character)", async () => {
    const { body } = await platform.query(`{ organization(uscc: "91350100M000100Y44") { uscc } }`);
    expect(body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "uscc",
    });
  });

  it("refuses an impossible date at the gateway, in a literal and in a variable", async () => {
    const literal = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: "2026-02-30") } }`,
    );
    expect(literal.status).toBe(400);
    expect(literal.body.errors).toEqual([
      {
        message: 'Date must be a calendar date YYYY-MM-DD, got "2026-02-30"',
        locations: [{ line: 1, column: 64 }],
        extensions: { code: "BAD_USER_INPUT", argument: "on" },
      },
    ]);
    const month = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { insuredMonths(region: "110000", from: "2021-11", to: "2026-13") } }`,
    );
    expect(month.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", argument: "to" });
    const variable = await platform.query(
      `query($on: Date) { person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: $on) } }`,
      { on: "2026-13-01" },
    );
    expect(variable.status).toBe(400);
    expect(variable.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    // A list nested deeper than the stack, half a megabyte of text: named, not written out.
    const query = `query($on: Date) { person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: $on) } }`;
    const deep = `${"[".repeat(100_000)}"2026-11-01"${"]".repeat(100_000)}`;
    for (const on of [deep, JSON.stringify("9".repeat(500_000))]) {
      const hostile = await fetch(platform.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/graphql-response+json",
          ...DEV_DESK,
        },
        body: `{"query":${JSON.stringify(query)},"variables":{"on":${on}}}`,
      });
      expect(hostile.status).toBe(400);
      const text = await hostile.text();
      expect(JSON.parse(text).errors[0].extensions.code).toBe("BAD_USER_INPUT");
      expect(text.length).toBeLessThan(500);
      expect(text).not.toContain("call stack");
    }
    // A built-in scalar's reason quotes the value too: cut. The position in a list is kept.
    const year = await platform.query(
      `query($y: Int!) { person(id: "${ZHANG_WEI}") { incomeTaxYears(region: "110000", fromYear: $y, toYear: 2025) } }`,
      { y: "9".repeat(500_000) },
    );
    expect(year.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(JSON.stringify(year.body).length).toBeLessThan(500);
    const gap = await platform.query(`query($ids: [ID!]!) { people(ids: $ids) { id } }`, {
      ids: [ZHANG_WEI, null],
    });
    expect(gap.body.errors?.[0]?.message).toContain('at "ids[1]"');
    // verify's issuedAt (DateTime) is refused by the gateway too, before any department.
    const instant = await platform.query(
      `query($at: DateTime) { verify(policy: "beijing-car-lottery/individual", subjects: ["${ZHANG_WEI}"], issuedAt: $at) { outcome } }`,
      { at: "yesterday" },
    );
    expect(instant.status).toBe(400);
    expect(instant.body.errors?.[0]).toMatchObject({
      message: expect.stringContaining('got "yesterday"'),
      extensions: { code: "BAD_USER_INPUT" },
    });
  });

  it("answers an unknown subject with null, not an error", async () => {
    const { body } = await platform.query(`{ person(id: "110105200001010016") { id name } }`);
    expect(body).toEqual({ data: { person: null } });
  });

  it("refuses mutations and unknown fields without calling any department", async () => {
    hukou.clear();
    const mutation = await platform.query(`mutation { person(id: "${ZHANG_WEI}") { name } }`);
    // The graph is read-only: 405, whatever the method, before the document is validated.
    expect(mutation.status).toBe(405);
    expect(mutation.body.errors?.[0]).toMatchObject({
      message: "Only queries are served, not mutations",
      extensions: { code: "BAD_USER_INPUT" },
    });
    const unknownField = await platform.query(`{ person(id: "${ZHANG_WEI}") { salary } }`);
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    const syntax = await platform.query(`{ person(id: `);
    expect(syntax.status).toBe(400);
    expect(syntax.body.errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
    // Every person is looked up in the register first: nothing reached it.
    expect(hukou.arrivals).toHaveLength(0);
    // (The relay does see a request that runs.)
    await platform.query(`{ person(id: "${ZHANG_WEI}") { name } }`);
    expect(hukou.arrivals).toHaveLength(1);
  });

  it("never shows a stack trace or an internal URL", async () => {
    const { body } = await platform.query(`{ person(id: "x") { id } }`);
    const text = JSON.stringify(body);
    expect(text).not.toMatch(/127\.0\.0\.1|localhost|\bat .*\.ts:\d+/);
  });
});

describe("operability", () => {
  it("serves health and readiness probes on the gateway and every department", async () => {
    const base = platform.url.replace(/\/graphql$/, "");
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", supergraph: "loaded" });
    for (const app of Object.values(platform.departments)) {
      const response = await app.inject({ method: "GET", url: "/ready" });
      expect(response.statusCode).toBe(200);
    }
  });

  it("shows the offline GraphiQL landing page to a browser", async () => {
    const page = await fetch(platform.url, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("/graphiql/graphiql.js");
    expect(html).toContain("studio.apollographql.com/sandbox");
    const script = await fetch(platform.url.replace(/graphql$/, "graphiql/graphiql.js"));
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100_000);
  });

  it("writes a hostile Host header into the landing page as text, not markup", async () => {
    const { request } = await import("undici");
    const host = 'x"><img src=x onerror=alert(1)></script><script>alert(2)</script>';
    const response = await request(platform.url, {
      headers: { accept: "text/html", host },
    });
    const html = await response.body.text();
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(html).not.toContain("<img src=x");
    expect(html).not.toContain("</script><script>alert(2)");
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
  });

  it("answers HEAD /graphql with 405 and the methods it serves", async () => {
    const head = await fetch(`${platform.url}?query=${encodeURIComponent("{ __typename }")}`, {
      method: "HEAD",
    });
    expect(head.status).toBe(405);
    expect(head.headers.get("allow")).toBe("GET, POST");
  });

  it("answers routes, methods and requests it does not serve in its error shape, with a code", async () => {
    const base = platform.url.replace(/\/graphql$/, "");
    const nowhere = await fetch(`${base}/nope?x=1`);
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toEqual({
      errors: [{ message: "Nothing is served at /nope", extensions: { code: "NOT_FOUND" } }],
    });
    const put = await fetch(platform.url, { method: "PUT", body: "{}" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, POST");
    expect((await put.json()).errors[0].extensions).toEqual({ code: "NOT_FOUND" });
    const script = await fetch(`${base}/graphiql/nothing.js`);
    expect((await script.json()).errors[0].extensions).toEqual({ code: "NOT_FOUND" });
    const undecodable = await fetch(`${base}/%zz`);
    expect(undecodable.status).toBe(400);
    expect((await undecodable.json()).errors[0].extensions).toEqual({ code: "BAD_USER_INPUT" });
    // Not HTTP as Node's parser takes it: a Content-Length that is no number.
    const { port } = new URL(platform.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () =>
        socket.write("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
      );
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString();
      });
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4))).toEqual({
      errors: [{ message: "Malformed HTTP request", extensions: { code: "BAD_USER_INPUT" } }],
    });
  });

  it("passes the request id on to the departments", async () => {
    hukou.clear();
    const response = await fetch(platform.url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "desk-req-42", ...DEV_DESK },
      body: JSON.stringify({ query: `{ person(id: "${ZHANG_WEI}") { name } }` }),
    });
    expect(response.headers.get("x-request-id")).toBe("desk-req-42");
    expect(hukou.arrivals.map((arrival) => arrival.headers["x-request-id"])).toEqual([
      "desk-req-42",
    ]);
  });

  it("replaces a request id too long or of odd characters, which could break a shared department call", async () => {
    // Sent at once, the three share the register's call, whose header carries their ids.
    hukou.clear();
    const ask = (id: string) =>
      fetch(platform.url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": id, ...DEV_DESK },
        body: JSON.stringify({ query: `{ person(id: "${ZHANG_WEI}") { name } }` }),
      });
    const responses = await Promise.all([ask("x".repeat(9000)), ask("a,b\tc"), ask("desk-req-43")]);
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ data: { person: { name: "张伟" } } });
    }
    const ids = responses.map((response) => response.headers.get("x-request-id"));
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[2]).toBe("desk-req-43");
    // The register heard the ids the desks were answered with, none of the refused ones.
    const heard = hukou.arrivals.flatMap((arrival) =>
      String(arrival.headers["x-request-id"]).split(","),
    );
    expect(heard.sort()).toEqual([...ids].sort());
  });
});
