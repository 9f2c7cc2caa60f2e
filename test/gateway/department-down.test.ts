/** A department that dies mid-test: the others still answer, the error names the department. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId } from "../../common/ids.ts";
import { openAuditDatabase, subjectEntries } from "../../gateway/ledger/store.ts";
import { LI_NA, writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";

/** A number nobody in the registers holds. */
const NOBODY = makePersonId("110108", "2001-02-03", 777);

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
/** Traffic is reached through a relay, which counts the connections made once it has died. */
const traffic = new Relay();
/** Its connections when it died. */
let atDeath = 0;

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  // An open circuit stays open for the whole file: half-open after 500 ms, it would let a trial
  // request through in the middle of the last test.
  platform = await startPlatform(data.dir, {
    config: { breakerResetMs: 60_000 },
    relays: { traffic },
  });
});

afterAll(() => tearDown(platform, data.remove));

describe("a department that is down", () => {
  it("answers fully while traffic is up", async () => {
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { name hasValidDriverLicense(on: "2026-11-01") } }`,
    );
    expect(body).toEqual({ data: { person: { name: "张伟", hasValidDriverLicense: true } } });
  });

  it("yields partial data and an error naming traffic once traffic is stopped", async () => {
    await platform.stopDepartment("traffic");
    traffic.down();
    atDeath = traffic.connections;
    const { status, body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { name maritalStatus(on: "2026-11-01") }
         cars: person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: "2026-11-01") } }`,
    );
    expect(status).toBe(200);
    // Facts of the other departments still arrive…
    expect(body.data?.person).toEqual({ name: "张伟", maritalStatus: "MARRIED" });
    // …and the non-null licence fact cannot, so its nearest nullable parent is null.
    expect(body.data?.cars).toBeNull();
    const error = body.errors?.find((e) => e.extensions?.code === "DEPARTMENT_UNAVAILABLE");
    expect(error?.extensions?.department).toBe("traffic");
    expect(error?.message).toContain("traffic");
    expect(JSON.stringify(body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|localhost/);
  });

  it("points the error of a fetch for every item of a list at that list", async () => {
    // Traffic is asked about each person's spouse at people.@.spouse: the error's path ends at
    // the list (people), a path that leads somewhere, and the spouses' nulls need no word more.
    const { body } = await platform.query(
      `query SpousesLicences($ids: [ID!]!) { people(ids: $ids) { maritalStatus(on: "2026-11-01") spouse(on: "2026-11-01") { hasValidDriverLicense(on: "2026-11-01") } } }`,
      { ids: [ZHANG_WEI, NOBODY] },
    );
    expect(body.data).toEqual({ people: [{ maritalStatus: "MARRIED", spouse: null }, null] });
    expect(body.errors).toEqual([
      expect.objectContaining({
        path: ["people"],
        extensions: expect.objectContaining({
          code: "DEPARTMENT_UNAVAILABLE",
          department: "traffic",
        }),
      }),
    ]);
    // The audit knows which objects missed traffic's facts: the wife's (failed), below Zhang
    // Wei's (partial); a number nobody holds had no spouse to ask about (not found).
    await platform.ledgerMoved();
    const outcome = (subject: string) => {
      const sqlite = openAuditDatabase(data.dir, { existing: true });
      try {
        return subjectEntries(sqlite, subject)
          .filter((entry) => entry.operationName === "SpousesLicences")
          .map((entry) => entry.outcome);
      } finally {
        sqlite.close();
      }
    };
    expect(outcome(ZHANG_WEI)).toEqual(["partial"]);
    expect(outcome(LI_NA)).toEqual(["failed"]);
    expect(outcome(NOBODY)).toEqual(["not-found"]);
  });

  it("fails fast once the circuit is open", async () => {
    for (let i = 0; i < 6; i++) {
      await platform.query(`{ person(id: "${ZHANG_WEI}") { hasValidDriverLicense } }`);
    }
    // Each attempt at the dead department was a connection, cut: behind an open circuit there
    // is none, not even the first of an attempt and its retries.
    // Connections made since it died: the failing queries' attempts reached it, cut.
    expect(traffic.connections).toBeGreaterThan(atDeath);
    const attempts = traffic.connections;
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { hasValidDriverLicense } }`,
    );
    expect(body.errors?.[0]?.extensions?.code).toBe("DEPARTMENT_UNAVAILABLE");
    expect(traffic.connections).toBe(attempts);
    const ready = await fetch(platform.url.replace(/graphql$/, "ready"));
    expect(
      ((await ready.json()) as { departments: Record<string, string> }).departments.traffic,
    ).toBe("circuit open");
  });
});
