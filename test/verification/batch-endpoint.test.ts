/**
 * `POST /verify/batch`, the endpoint `npm run verify` calls: exactly the lines the CLI writes, in
 * the order asked, INVALID lines for malformed subjects, proofs that jose verifies and that are
 * byte for byte those `Query.verify` signs; the same authentication, scopes, limits, rate limit and
 * audit as the GraphQL endpoint.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId } from "../../common/ids.ts";
import { maskPersonId } from "../../common/masking.ts";
import { databasePath } from "../../common/sqlite.ts";
import { formatResultLine, type ResultLine } from "../../gateway/verification/batch.ts";
import { seedPopulation } from "../../scripts/population.ts";
import { journalRecords, tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform } from "../platform.ts";
import { D } from "./records.ts";

const POLICY = "beijing-car-lottery/individual";
const sha = (key: string) => `sha256:${createHash("sha256").update(key).digest("hex")}`;
const VERIFY_SCOPES = ["verify:beijing-car-lottery/individual"];
const DESKS = {
  desks: [
    {
      id: "dev-desk",
      name: "Development desk",
      demo: true,
      keys: [sha("dev-desk-key")],
      purposes: [{ code: "demo", legalBasis: "tests", scopes: ["*"] }],
    },
    {
      id: "dev-lottery",
      name: "Lottery desk",
      demo: true,
      keys: [sha("dev-lottery-key")],
      purposes: [{ code: "car-lottery", legalBasis: "tests", scopes: VERIFY_SCOPES }],
    },
    {
      id: "housing",
      name: "Housing desk",
      keys: [sha("housing-desk-key")],
      purposes: [{ code: "housing", legalBasis: "tests", scopes: ["identity:basic"] }],
    },
    {
      id: "limited",
      name: "Desk with a small rate limit",
      keys: [sha("limited-desk-key")],
      rateLimit: { max: 2, windowMs: 60_000 },
      purposes: [{ code: "car-lottery", legalBasis: "tests", scopes: VERIFY_SCOPES }],
    },
  ],
};
const DEV = { authorization: "Bearer dev-desk-key", "x-purpose": "demo" };
const LOTTERY = {
  authorization: "Bearer dev-lottery-key",
  "x-purpose": "car-lottery",
  "x-case-id": "LOTTERY-2026-11",
};

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
let base: string;
let ids: string[];
const saved = { ...process.env };

beforeAll(async () => {
  data = tempDataDir();
  seedPopulation({ persons: 1_500, seed: 3, asOf: D, dir: data.dir });
  const hukou = new Database(databasePath("hukou", data.dir), { readonly: true });
  ids = hukou.prepare("SELECT id FROM person ORDER BY rowid").pluck().all() as string[];
  hukou.close();
  const desksFile = join(data.dir, "desks.json");
  writeFileSync(desksFile, JSON.stringify(DESKS));
  Object.assign(process.env, { DESKS_FILE: desksFile, AUDIT_SYNC: "normal" });
  platform = await startPlatform(data.dir);
  base = platform.url.replace(/\/graphql$/, "");
}, 120_000);

afterAll(async () => {
  await platform?.close();
  process.env = saved;
  data?.remove();
});

async function batch(body: unknown, headers: Record<string, string> = DEV) {
  const response = await fetch(`${base}/verify/batch`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function lines(text: string): ResultLine[] {
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((line) => JSON.parse(line) as ResultLine);
}

function errorOf(text: string): { message: string; extensions: Record<string, unknown> } {
  return (
    JSON.parse(text) as { errors: Array<{ message: string; extensions: Record<string, unknown> }> }
  ).errors[0] as never;
}

const ISSUED_AT = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000)
  .toISOString()
  .replace(/\.\d{3}Z$/, "Z");

describe("POST /verify/batch", { timeout: 60_000 }, () => {
  it("answers the CLI's lines in the order asked, byte for byte what Query.verify gives", async () => {
    // Malformed, duplicated, lower-case and padded subjects among 1,000.
    const subjects = ids.slice(0, 994);
    subjects.splice(3, 0, "110105198503121016", "", "not an id");
    subjects.splice(500, 0, ` ${ids[7]} `, (ids[8] as string).toLowerCase(), ids[0] as string);
    const answer = await batch({ policy: POLICY, subjects, on: D, issuedAt: ISSUED_AT }, LOTTERY);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const results = lines(answer.text);
    expect(results).toHaveLength(1_000);
    expect(results.slice(3, 6)).toMatchObject([
      { subject: "110105198503121016", outcome: "INVALID", reasons: ["INVALID_ID"] },
      { subject: "", outcome: "INVALID", reasons: ["INVALID_ID"] },
      { subject: "NOT AN ID", outcome: "INVALID", reasons: ["INVALID_ID"] },
    ]);
    expect(results.map((result) => result.subject)).toEqual(
      subjects.map((subject) => subject.toUpperCase()),
    );
    // As given, upper-cased: a padded number is not a well-formed one.
    expect(results[500]).toMatchObject({
      subject: ` ${ids[7]} `,
      outcome: "INVALID",
      reasons: ["INVALID_ID"],
    });
    expect(results[501]).toMatchObject({ subject: ids[8] });
    const outcomes = new Set(results.map((result) => result.outcome));
    expect(outcomes).toEqual(new Set(["ELIGIBLE", "INELIGIBLE", "INVALID"]));

    // The same request through GraphQL, written as the CLI writes lines.
    const graphql = await platform.query<{ verify: ResultLine[] }>(
      `query ($s: [ID!]!, $at: DateTime) { verify(policy: "${POLICY}", subjects: $s, on: "${D}", issuedAt: $at) { subject outcome reasons unavailable quota proof } }`,
      { s: subjects, at: ISSUED_AT },
      LOTTERY,
    );
    expect(graphql.body.errors).toBeUndefined();
    const expected = (graphql.body.data?.verify ?? [])
      .map((verdict) => `${formatResultLine(verdict)}\n`)
      .join("");
    expect(answer.text).toBe(expected);
  });

  it("every line's proof verifies with jose against the published keys", async () => {
    const subjects = [...ids.slice(100, 400), "not an id"];
    const answer = await batch({ policy: POLICY, subjects, on: D }, LOTTERY);
    expect(answer.status).toBe(200);
    const keys = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const jwks = createLocalJWKSet(keys);
    const results = lines(answer.text);
    expect(results).toHaveLength(subjects.length);
    for (const [index, result] of results.entries()) {
      const { payload, protectedHeader } = await jwtVerify(result.proof as string, jwks, {
        algorithms: ["EdDSA"],
        typ: "verdict+jwt",
      });
      expect(protectedHeader.alg).toBe("EdDSA");
      expect(payload).toMatchObject({
        policy: POLICY,
        on: D,
        outcome: result.outcome,
        reasons: result.reasons,
        unavailable: result.unavailable,
        desk: "dev-lottery",
        purpose: "car-lottery",
        caseId: "LOTTERY-2026-11",
      });
      // Without identity:basic the proof shows the subject masked; the line shows it as asked.
      expect(result.subject).toBe((subjects[index] as string).toUpperCase());
      if (result.outcome === "INVALID") expect(index).toBe(subjects.length - 1);
      else expect(payload.sub).toBe(maskPersonId(result.subject as string));
    }
  });

  it("proofs: false leaves the proofs out", async () => {
    const answer = await batch({
      policy: POLICY,
      subjects: ids.slice(0, 50),
      on: D,
      proofs: false,
    });
    expect(answer.status).toBe(200);
    const results = lines(answer.text);
    expect(results).toHaveLength(50);
    expect(results.every((result) => result.proof === undefined)).toBe(true);
    expect(Object.keys(results[0] as object)).toEqual([
      "subject",
      "outcome",
      "reasons",
      "unavailable",
    ]);
  });

  it("no subjects: an empty answer after the same checks (the CLI's fail-fast)", async () => {
    const answer = await batch({ policy: POLICY, subjects: [], on: D });
    expect(answer).toMatchObject({ status: 200, text: "" });
  });

  it("refuses without credentials, with a bad key, and a purpose without the policy's scope", async () => {
    const body = { policy: POLICY, subjects: ids.slice(0, 3), on: D };
    const none = await batch(body, {});
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect(errorOf(none.text).extensions.code).toBe("UNAUTHENTICATED");
    const wrong = await batch(body, { authorization: "Bearer nope", "x-purpose": "demo" });
    expect(wrong.status).toBe(401);
    const housing = await batch(body, {
      authorization: "Bearer housing-desk-key",
      "x-purpose": "housing",
    });
    expect(housing.status).toBe(403);
    expect(errorOf(housing.text)).toMatchObject({
      extensions: { code: "FORBIDDEN" },
      message: expect.stringContaining("verify:beijing-car-lottery/individual"),
    });
    for (const refused of [none, wrong, housing]) expect(refused.text).not.toContain(ids[0]);
  });

  it("refuses bad input with the argument named, and more subjects than one call allows", async () => {
    const cases: Array<[unknown, number, string, string | undefined]> = [
      [{ policy: "no/such", subjects: [] }, 400, "BAD_USER_INPUT", "policy"],
      [{ policy: POLICY, subjects: [], on: "2026-13-01" }, 400, "BAD_USER_INPUT", "on"],
      [{ policy: POLICY, subjects: [], issuedAt: "yesterday" }, 400, "BAD_USER_INPUT", "issuedAt"],
      [{ policy: POLICY, subjects: [1, 2] }, 400, "BAD_USER_INPUT", "subjects[0]"],
      [{ policy: POLICY }, 400, "BAD_USER_INPUT", "subjects"],
      [["not", "an", "object"], 400, "BAD_USER_INPUT", undefined],
      [{ policy: POLICY, subjects: ids.slice(0, 1_001) }, 413, "LIMIT_EXCEEDED", "subjects"],
    ];
    for (const [body, status, code, argument] of cases) {
      const answer = await batch(body);
      expect(answer.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(errorOf(answer.text).extensions).toEqual({ code, ...(argument ? { argument } : {}) });
    }
  });

  it("counts against the desk's rate limit like /graphql", async () => {
    const headers = { authorization: "Bearer limited-desk-key", "x-purpose": "car-lottery" };
    const body = { policy: POLICY, subjects: ids.slice(0, 2), on: D };
    expect((await batch(body, headers)).status).toBe(200);
    expect((await batch(body, headers)).status).toBe(200);
    const third = await batch(body, headers);
    expect(third.status).toBe(429);
    expect(errorOf(third.text).extensions.code).toBe("RATE_LIMITED");
  });

  it("records one audit entry per well-formed subject, before answering", async () => {
    // Born in 1901: nobody the seed made, so the register answers that it does not know them.
    const stranger = makePersonId("110101", "1901-01-01", 999);
    const subjects = [ids[1200] as string, ids[1201] as string, stranger, "not an id"];
    const answer = await batch({ policy: POLICY, subjects, on: D }, LOTTERY);
    expect(answer.status).toBe(200);
    // On disk the moment the answer is in: in the gateway's journal, moved into audit.db later.
    const acknowledged = journalRecords(data.dir).flatMap((record) => record.subjects.split("\n"));
    expect(acknowledged).toEqual(expect.arrayContaining(subjects.slice(0, 3)));
    await platform.ledgerMoved();
    const ledger = new Database(join(data.dir, "audit.db"), { readonly: true });
    const rows = ledger
      .prepare(
        `SELECT e.subject, r.desk_id AS desk, r.purpose, r.operation_name AS operation, e.outcome,
                r.departments
         FROM entries e JOIN request_details r ON r.seq = e.request
         WHERE r.desk_id = 'dev-lottery' AND e.subject IN (?, ?, ?, ?)`,
      )
      .all(...subjects) as Array<{
      subject: string;
      operation: string;
      outcome: string;
      departments: string;
    }>;
    ledger.close();
    expect(rows.map((row) => row.subject).sort()).toEqual(subjects.slice(0, 3).sort());
    const bySubject = new Map(rows.map((row) => [row.subject, row]));
    for (const subject of subjects.slice(0, 2)) {
      expect(bySubject.get(subject)).toMatchObject({
        operation: `verify ${POLICY}`,
        outcome: "answered",
      });
    }
    // At least one of them was asked of more departments than the register…
    const asked = subjects
      .slice(0, 2)
      .map((s) => JSON.parse(bySubject.get(s)?.departments ?? "[]"));
    expect(asked.some((departments) => departments.length > 1)).toBe(true);
    // …but the stranger's entry names the one department asked about them, not the request's.
    expect(bySubject.get(stranger)).toMatchObject({ outcome: "not-found" });
    expect(JSON.parse(bySubject.get(stranger)?.departments ?? "null")).toEqual(["hukou"]);
  });
});
