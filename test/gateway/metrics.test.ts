/**
 * `GET /metrics`: what the gateway served, read back in Prometheus's text format after real
 * requests through the real platform — a department that dies included — and who may read it.
 */
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveMetrics } from "../../common/metrics.ts";
import { developmentCitizenToken } from "../../gateway/security/citizen-token.ts";
import { writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir, until } from "../helpers.ts";
import { DEV_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";

const D = "2026-11-01";
const POLICY = "beijing-car-lottery/individual";
const TOKEN = "metrics-token-for-the-test-0123456789";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
/** Traffic is reached through a relay, so that it can die in the middle of the file. */
const traffic = new Relay();

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  // An open circuit stays open for the rest of the file once traffic has died.
  platform = await startPlatform(data.dir, {
    config: { breakerResetMs: 60_000 },
    relays: { traffic },
  });
});

afterAll(() => tearDown(platform, data.remove));

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(
  url = platform.url,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; text: string; samples: Sample[] }> {
  const response = await fetch(url.replace(/\/graphql$/, "/metrics"), { headers });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    text,
    samples: parseSamples(text),
  };
}

/** Prometheus's text format, sample by sample. */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = value as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sample of `name` whose labels include `labels` (0 when there is none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted),
  );
  return found.reduce((total, sample) => total + sample.value, 0);
}

describe("GET /metrics", () => {
  it("counts an answered request by desk and outcome, with its department calls and its record", async () => {
    const before = (await scrape()).samples;
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { name hasValidDriverLicense(on: "${D}") } }`,
    );
    expect(body.errors).toBeUndefined();
    const { status, type, samples } = await scrape();
    expect(status).toBe(200);
    expect(type).toContain("text/plain; version=0.0.4");
    const grew = (name: string, labels: Record<string, string> = {}) =>
      value(samples, name, labels) - value(before, name, labels);
    expect(
      grew("mianzheng_requests_total", { route: "/graphql", desk: "dev-desk", outcome: "ok" }),
    ).toBe(1);
    expect(grew("mianzheng_request_duration_seconds_count", { desk: "dev-desk" })).toBe(1);
    expect(grew("mianzheng_operation_estimated_cost_count", { desk: "dev-desk" })).toBe(1);
    // Its time by phase, each once, together within the time the whole request took.
    let phases = 0;
    for (const phase of ["prepare", "execute", "record"]) {
      expect(grew("mianzheng_query_phase_seconds_count", { phase }), phase).toBe(1);
      phases += grew("mianzheng_query_phase_seconds_sum", { phase });
    }
    expect(grew("mianzheng_query_phase_seconds_sum", { phase: "execute" })).toBeGreaterThan(0);
    expect(phases).toBeLessThanOrEqual(
      grew("mianzheng_request_duration_seconds_sum", { desk: "dev-desk" }) + 1e-6,
    );
    // The person and its licence: the household register and traffic were each called.
    for (const department of ["hukou", "traffic"]) {
      expect(
        grew("mianzheng_department_calls_total", { department, outcome: "ok" }),
        department,
      ).toBeGreaterThanOrEqual(1);
      expect(
        grew("mianzheng_department_call_duration_seconds_count", { department }),
      ).toBeGreaterThanOrEqual(1);
    }
    expect(grew("mianzheng_department_calls_total", { department: "tax" })).toBe(0);
    // One record for the request that touched Zhang Wei, made durable by a flush.
    expect(grew("mianzheng_audit_records_total")).toBe(1);
    expect(grew("mianzheng_audit_flush_duration_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(value(samples, "mianzheng_audit_ledger_up")).toBe(1);
    // audit.db's entries, read from the writer thread once the record has been moved there.
    await platform.ledgerMoved();
    const moved = (await scrape()).samples;
    expect(value(moved, "mianzheng_audit_entries") - value(before, "mianzheng_audit_entries")).toBe(
      1,
    );
    // The writer indexes what it wrote once the ledger is quiet (a tick a second): then nothing
    // is left for a citizen's log to scan.
    const deadline = Date.now() + 10_000;
    let unindexed = value(moved, "mianzheng_audit_unindexed_entries");
    while (unindexed > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      unindexed = value((await scrape()).samples, "mianzheng_audit_unindexed_entries");
    }
    expect(unindexed).toBe(0);
    expect(value(samples, "mianzheng_department_up", { department: "traffic" })).toBe(1);
    // The process's own figures, once.
    expect(value(samples, "mianzheng_gateway_process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(
      samples.filter(
        (sample) => sample.name === "mianzheng_gateway_nodejs_eventloop_lag_p99_seconds",
      ),
    ).toHaveLength(1);
  });

  it("counts refusals by their error code, and a citizen as a citizen, never by number", async () => {
    const before = (await scrape()).samples;
    const anonymous = await platform.query("{ __typename }", {}, {});
    expect(anonymous.status).toBe(401);
    const tooDear = await platform.query(
      `query ($ids: [ID!]!) { people(ids: $ids) { contributions { month } } }`,
      { ids: Array.from({ length: 1000 }, () => ZHANG_WEI) },
    );
    expect(tooDear.body.errors?.[0]?.extensions?.code).toBe("LIMIT_EXCEEDED");
    const token = await developmentCitizenToken(ZHANG_WEI);
    const log = await platform.query(
      "{ myAccessLog { at } }",
      {},
      { authorization: `Bearer ${token}` },
    );
    expect(log.body.errors).toBeUndefined();
    const { samples, text } = await scrape();
    const grew = (labels: Record<string, string>) =>
      value(samples, "mianzheng_requests_total", labels) -
      value(before, "mianzheng_requests_total", labels);
    expect(grew({ desk: "anonymous", outcome: "UNAUTHENTICATED" })).toBe(1);
    expect(grew({ desk: "dev-desk", outcome: "LIMIT_EXCEEDED" })).toBe(1);
    expect(grew({ desk: "citizen", outcome: "ok" })).toBe(1);
    // Only the citizen's log was answered: the refusals ran no phase of a query.
    expect(
      value(samples, "mianzheng_query_phase_seconds_count", { phase: "prepare" }) -
        value(before, "mianzheng_query_phase_seconds_count", { phase: "prepare" }),
    ).toBe(1);
    // A refused operation's estimate is not among those accepted.
    expect(
      value(samples, "mianzheng_operation_estimated_cost_bucket", {
        desk: "dev-desk",
        le: "100000",
      }),
    ).toBe(value(samples, "mianzheng_operation_estimated_cost_count", { desk: "dev-desk" }));
    expect(text).not.toContain(ZHANG_WEI);
  });

  it("counts verdicts by policy and verdict", async () => {
    const before = (await scrape()).samples;
    const { body } = await platform.query<{ verify: Array<{ outcome: string }> }>(
      `{ verify(policy: "${POLICY}", subjects: ["${ZHANG_WEI}", "110105198503121016"], on: "${D}") { outcome } }`,
    );
    expect(body.errors).toBeUndefined();
    const outcomes = body.data?.verify.map((verdict) => verdict.outcome) ?? [];
    expect(outcomes).toHaveLength(2);
    const { samples } = await scrape();
    for (const outcome of new Set(outcomes)) {
      const labels = { policy: POLICY, verdict: outcome };
      expect(
        value(samples, "mianzheng_verification_verdicts_total", labels) -
          value(before, "mianzheng_verification_verdicts_total", labels),
        outcome,
      ).toBe(outcomes.filter((each) => each === outcome).length);
    }
  });

  it("counts a request whose client left before its answer as aborted, once", async () => {
    const before = (await scrape()).samples;
    traffic.holdMs = 1_000;
    const released = traffic.releases.length;
    try {
      const body = JSON.stringify({
        query: `{ person(id: "${ZHANG_WEI}") { licence: hasValidDriverLicense(on: "${D}") } }`,
      });
      const { port } = new URL(platform.url);
      await new Promise<void>((resolve, reject) => {
        const asked = httpRequest({
          host: "127.0.0.1",
          port,
          path: "/graphql",
          method: "POST",
          headers: { ...DEV_DESK, "content-type": "application/json" },
        });
        asked.on("response", () => reject(new Error("answered before the client left")));
        // The client leaves while traffic holds its answer back.
        asked.on("error", () => resolve());
        asked.end(body, () => setTimeout(() => asked.destroy(), 200));
        asked.on("close", () => resolve());
      });
      // The gateway finishes the request it was serving, then answers nobody.
      await until(() => traffic.releases.length > released, 5_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      traffic.holdMs = 0;
    }
    const { samples } = await scrape();
    const grew = (outcome: string) =>
      value(samples, "mianzheng_requests_total", { route: "/graphql", desk: "dev-desk", outcome }) -
      value(before, "mianzheng_requests_total", { route: "/graphql", desk: "dev-desk", outcome });
    expect(grew("aborted")).toBe(1);
    expect(grew("ok")).toBe(0);
    expect(grew("partial")).toBe(0);
  });

  it("shows a department that died: failed calls, retries, a partial answer, then its circuit open", async () => {
    const before = (await scrape()).samples;
    await platform.stopDepartment("traffic");
    traffic.down();
    // Until the breaker opens: it counts the failures among the calls of its last 10 s, the
    // earlier tests' successful ones included.
    let open = false;
    let asked = 0;
    for (; asked < 30 && !open; asked++) {
      const { body } = await platform.query(
        `{ person(id: "${ZHANG_WEI}") { name licence: hasValidDriverLicense(on: "${D}") } }`,
      );
      expect(body.errors?.[0]?.extensions?.code).toBe("DEPARTMENT_UNAVAILABLE");
      open =
        value((await scrape()).samples, "mianzheng_department_calls_total", {
          department: "traffic",
          outcome: "circuit_open",
        }) > 0;
    }
    expect(open).toBe(true);
    const { samples } = await scrape();
    const grew = (name: string, labels: Record<string, string>) =>
      value(samples, name, labels) - value(before, name, labels);
    // The licence is non-null, so `person` is null: data with an error, a partial answer…
    expect(
      grew("mianzheng_requests_total", { route: "/graphql", desk: "dev-desk", outcome: "partial" }),
    ).toBe(asked);
    expect(
      grew("mianzheng_department_calls_total", { department: "traffic", outcome: "failed" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      grew("mianzheng_department_retries_total", { department: "traffic" }),
    ).toBeGreaterThanOrEqual(1);
    // …and after enough failures the breaker fails fast, without calling.
    expect(
      grew("mianzheng_department_calls_total", { department: "traffic", outcome: "circuit_open" }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(samples, "mianzheng_department_up", { department: "traffic" })).toBe(0);
    expect(value(samples, "mianzheng_department_up", { department: "hukou" })).toBe(1);
  });
});

describe("a department's GET /metrics", () => {
  it("counts its GraphQL requests by status and the entities each _entities call asked for", async () => {
    const base = (department: "hukou" | "tax") => {
      const { port } = platform.departments[department].server.address() as AddressInfo;
      return `http://127.0.0.1:${port}`;
    };
    // Not signed by the gateway: refused with 401, and counted so.
    const unsigned = await fetch(`${base("tax")}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(unsigned.status).toBe(401);
    // The metrics need no signature: they are the department operator's, not the gateway's.
    const response = await fetch(`${base("tax")}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(
      value(parseSamples(text), "mianzheng_subgraph_requests_total", {
        department: "tax",
        status: "401",
      }),
    ).toBe(1);
    // A person's tax fact: the gateway asks tax through _entities.
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { incomeTaxTotal(year: 2025) } }`,
    );
    expect(body.errors).toBeUndefined();
    const samples = parseSamples(await (await fetch(`${base("tax")}/metrics`)).text());
    expect(
      value(samples, "mianzheng_subgraph_entities_per_call_count", { department: "tax" }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(samples, "mianzheng_subgraph_process_cpu_seconds_total")).toBeGreaterThan(0);
    const hukou = parseSamples(await (await fetch(`${base("hukou")}/metrics`)).text());
    expect(
      value(hukou, "mianzheng_subgraph_requests_total", { department: "hukou", status: "200" }),
    ).toBeGreaterThanOrEqual(1);
    // Asked about Zhang Wei, tax tells nobody so in its metrics.
    expect(await (await fetch(`${base("tax")}/metrics`)).text()).not.toContain(ZHANG_WEI);
  });
});

describe("METRICS_TOKEN", () => {
  let guarded: Platform;
  let guardedData: ReturnType<typeof tempDataDir>;

  beforeAll(async () => {
    guardedData = tempDataDir();
    writeFixtures(guardedData.dir);
    guarded = await startPlatform(guardedData.dir, {
      config: { metricsToken: TOKEN, security: { rateLimit: { max: 3, windowMs: 60_000 } } },
    });
  });

  afterAll(() => tearDown(guarded, guardedData.remove));

  it("is required as a bearer token once set", async () => {
    const none = await scrape(guarded.url);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text)).toEqual({
      errors: [
        {
          message: "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>",
          extensions: { code: "UNAUTHENTICATED" },
        },
      ],
    });
    // A desk's key is not the metrics token.
    const desk = await scrape(guarded.url, { authorization: "Bearer dev-desk-key" });
    expect(desk.status).toBe(401);
    // The scheme's name in any case, as HTTP has it.
    const right = await scrape(guarded.url, { authorization: `bearer ${TOKEN}` });
    expect(right.status).toBe(200);
    expect(value(right.samples, "mianzheng_audit_ledger_up")).toBe(1);
  });

  it("counts the other routes and the refusals that name no code of their own", async () => {
    const token = { authorization: `Bearer ${TOKEN}` };
    const before = (await scrape(guarded.url, token)).samples;
    const base = guarded.url.replace(/\/graphql$/, "");
    // A job nobody submitted, as the development desk.
    const job = await fetch(`${base}/jobs/00000000-0000-4000-8000-000000000000`, {
      headers: { authorization: "Bearer dev-desk-key", "x-purpose": "demo" },
    });
    expect(job.status).toBe(404);
    // A citizen over the default rate limit (this platform's: 3 a minute).
    const citizen = { authorization: `Bearer ${await developmentCitizenToken(ZHANG_WEI)}` };
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await guarded.query("{ myAccessLog { at } }", {}, citizen)).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const after = (await scrape(guarded.url, token)).samples;
    const grew = (labels: Record<string, string>) =>
      value(after, "mianzheng_requests_total", labels) -
      value(before, "mianzheng_requests_total", labels);
    expect(grew({ route: "/jobs/:id", desk: "dev-desk", outcome: "NOT_FOUND" })).toBe(1);
    // A route whose error names its code only in its body: the outcome read from the status.
    const proof = await fetch(`${base}/proofs/verify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ proof: 42 }),
    });
    expect(proof.status).toBe(400);
    expect(
      value((await scrape(guarded.url, token)).samples, "mianzheng_requests_total", {
        route: "/proofs/verify",
        desk: "anonymous",
        outcome: "BAD_USER_INPUT",
      }),
    ).toBe(1);
    expect(grew({ route: "/graphql", desk: "citizen", outcome: "ok" })).toBe(3);
    expect(grew({ route: "/graphql", desk: "citizen", outcome: "RATE_LIMITED" })).toBe(1);
    // The probes, a HEAD and the metrics themselves are not requests of the service.
    await fetch(`${base}/health`);
    expect((await fetch(guarded.url, { method: "HEAD" })).status).toBe(405);
    const probed = (await scrape(guarded.url, token)).samples;
    expect(
      probed.filter(
        (sample) =>
          sample.name === "mianzheng_requests_total" &&
          ["/health", "/metrics"].includes(sample.labels.route ?? ""),
      ),
    ).toEqual([]);
    expect(
      value(probed, "mianzheng_requests_total", { route: "/graphql", desk: "anonymous" }),
    ).toBe(0);
  });
});

describe("wrong metrics tokens", () => {
  it("refuse an address after too many, the right token too, until its window ends", async () => {
    const app = Fastify({ logger: false });
    serveMetrics(app, {
      token: TOKEN,
      production: true,
      text: async () => "up 1\n",
      wrongTokens: { max: 3, windowMs: 400 },
    });
    const scrapeFrom = async (remoteAddress: string, token: string) => {
      const response = await app.inject({
        method: "GET",
        url: "/metrics",
        remoteAddress,
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: response.statusCode, response };
    };
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await scrapeFrom("10.0.0.7", "guess")).status);
      expect(statuses).toEqual([401, 401, 401]);
      const refused = await scrapeFrom("10.0.0.7", TOKEN);
      expect(refused.status).toBe(429);
      expect(Number(refused.response.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(refused.response.json()).toEqual({
        errors: [
          {
            message: expect.stringMatching(/^Too many wrong metrics tokens from this address/),
            extensions: { code: "RATE_LIMITED" },
          },
        ],
      });
      // Another address is not concerned.
      expect((await scrapeFrom("10.0.0.8", TOKEN)).status).toBe(200);
      // Once the window of the first wrong token has passed, the address is heard again.
      await new Promise((resolve) => setTimeout(resolve, 450));
      const again = await scrapeFrom("10.0.0.7", TOKEN);
      expect(again.status).toBe(200);
      expect(again.response.body).toBe("up 1\n");
    } finally {
      await app.close();
    }
  });
});
