/**
 * Honest under failure: a department that does not answer makes the verdicts that need it
 * UNDETERMINED with that department in `unavailable` — never INELIGIBLE for a missing fact — while
 * requirements that could be evaluated still decide, and an open breaker makes it cheap.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";
import { D, qualifiedMigrant, Records } from "./records.ts";

const r = new Records();
const beijinger = r.person();
r.licence(beijinger);
const minorWithoutLicence = r.person({ birthDate: "2012-01-01" });
const migrant = qualifiedMigrant(r);
const notRegistered = r.unknownPerson();
const company = r.organization();
r.vat(company, "2025-03", "80000.00");
const revokedCompany = r.organization({ status: "REVOKED" });

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
/** Traffic is reached through a relay, which counts the connections made once it has died. */
const traffic = new Relay();
/** Its connections when it died. */
let atDeath = 0;

beforeAll(async () => {
  data = tempDataDir();
  r.write(data.dir);
  platform = await startPlatform(data.dir, {
    config: { breakerResetMs: 60_000 },
    relays: { traffic },
  });
});

afterAll(() => tearDown(platform, data.remove));

interface VerdictBody {
  subject: string;
  outcome: string;
  reasons: string[];
  unavailable: string[];
  quota: number | null;
  departments: Array<{ department: string }>;
}

async function verify(policy: string, subjects: string[]): Promise<VerdictBody[]> {
  const { status, body } = await platform.query<{ verify: VerdictBody[] }>(
    `query ($s: [ID!]!) { verify(policy: "${policy}", subjects: $s, on: "${D}") {
      subject outcome reasons unavailable quota departments { department } } }`,
    { s: subjects },
  );
  expect(status).toBe(200);
  expect(body.errors).toBeUndefined();
  return body.data?.verify ?? [];
}

const summary = (verdicts: VerdictBody[]) =>
  verdicts.map(({ outcome, reasons, unavailable }) => ({ outcome, reasons, unavailable }));

describe("departments that do not answer", () => {
  it("social down: only the subject that needs 3c is UNDETERMINED, naming social", async () => {
    await platform.stopDepartment("social");
    expect(summary(await verify("beijing-car-lottery/individual", [beijinger, migrant]))).toEqual([
      { outcome: "ELIGIBLE", reasons: [], unavailable: [] },
      { outcome: "UNDETERMINED", reasons: [], unavailable: ["social"] },
    ]);
  });

  it("traffic down too: INELIGIBLE where a register requirement fails, UNDETERMINED otherwise", async () => {
    await platform.stopDepartment("traffic");
    traffic.down();
    atDeath = traffic.connections;
    const verdicts = await verify("beijing-car-lottery/individual", [
      beijinger,
      minorWithoutLicence,
      migrant,
      notRegistered,
    ]);
    expect(summary(verdicts)).toEqual([
      { outcome: "UNDETERMINED", reasons: [], unavailable: ["traffic"] },
      // The missing licence is not held against the minor: only what could be evaluated failed.
      { outcome: "INELIGIBLE", reasons: ["UNDERAGE"], unavailable: ["traffic"] },
      { outcome: "UNDETERMINED", reasons: [], unavailable: ["traffic", "social"] },
      { outcome: "INELIGIBLE", reasons: ["SUBJECT_NOT_FOUND"], unavailable: [] },
    ]);
    expect(verdicts[0]?.departments.map((d) => d.department)).toEqual(["hukou"]);
  });

  it("a dead department is not even tried once its breaker is open", async () => {
    for (let i = 0; i < 6; i++) await verify("beijing-car-lottery/individual", [beijinger]);
    // Connections made since it died: the failing queries' attempts reached it, cut.
    expect(traffic.connections).toBeGreaterThan(atDeath);
    const attempts = traffic.connections;
    const [verdict] = await verify("beijing-car-lottery/individual", [beijinger]);
    expect(verdict?.outcome).toBe("UNDETERMINED");
    expect(verdict?.unavailable).toEqual(["traffic"]);
    // No connection, so no timeout or retry's backoff to wait for.
    expect(traffic.connections).toBe(attempts);
  });

  it("tax down: the organisation policy cannot count VAT, but a revoked organisation is still INELIGIBLE", async () => {
    await platform.stopDepartment("tax");
    const verdicts = await verify("beijing-car-lottery/organization", [company, revokedCompany]);
    expect(
      verdicts.map(({ outcome, reasons, unavailable, quota }) => ({
        outcome,
        reasons,
        unavailable,
        quota,
      })),
    ).toEqual([
      { outcome: "UNDETERMINED", reasons: [], unavailable: ["tax"], quota: 0 },
      {
        outcome: "INELIGIBLE",
        reasons: ["ORGANIZATION_NOT_ACTIVE"],
        unavailable: ["tax"],
        quota: 0,
      },
    ]);
  });

  it("the household register down: nothing can be said, not even whether the person exists", async () => {
    await platform.stopDepartment("hukou");
    expect(
      summary(await verify("beijing-car-lottery/individual", [beijinger, notRegistered])),
    ).toEqual([
      { outcome: "UNDETERMINED", reasons: [], unavailable: ["hukou", "traffic"] },
      { outcome: "UNDETERMINED", reasons: [], unavailable: ["hukou", "traffic"] },
    ]);
  });
});
