/**
 * `beijing-car-lottery/organization`: status, region, the year's Beijing VAT at 50,000.00 and the
 * quota steps and cap, through the real gateway over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";
import { D, HEBEI_DISTRICT, Records } from "./records.ts";

const POLICY = "beijing-car-lottery/organization";
const r = new Records();

/** An active Beijing organisation with one VAT payment for March 2025 (the year before D's). */
function withVat(amount: string, paidOn?: string): string {
  const uscc = r.organization();
  r.vat(uscc, "2025-03", amount, paidOn);
  return uscc;
}

const quotaCases: Array<[string, number]> = [
  ["50000.00", 1],
  ["549999.99", 1],
  ["550000.00", 2],
  ["1049999.99", 2],
  ["1050000.00", 3],
  ["2549999.99", 5],
  ["2550000.00", 6],
  ["3049999.99", 6],
  ["3050000.00", 6],
  ["987654321.00", 6],
];
const byQuota = quotaCases.map(([amount, quota]) => [withVat(amount), amount, quota] as const);
const justBelow = withVat("49999.99");
const splitOverMonths = r.organization();
r.vat(splitOverMonths, "2025-01", "20000.00").vat(splitOverMonths, "2025-12", "30000.00", D);
const paidAfterD = r.organization();
r.vat(paidAfterD, "2025-01", "20000.00").vat(paidAfterD, "2025-12", "30000.00", "2026-11-02");
const wrongYears = r.organization();
r.vat(wrongYears, "2024-12", "80000.00").vat(wrongYears, "2026-01", "80000.00");
const vatOutsideBeijing = r.organization();
r.vat(vatOutsideBeijing, "2025-03", "80000.00", undefined, HEBEI_DISTRICT);
const revoked = r.organization({ status: "REVOKED" });
r.vat(revoked, "2025-03", "80000.00");
const deregistered = r.organization({ status: "DEREGISTERED" });
r.vat(deregistered, "2025-03", "80000.00");
const hebei = r.organization({ region: HEBEI_DISTRICT });
r.vat(hebei, "2025-03", "80000.00");
const failsEverything = r.organization({ region: HEBEI_DISTRICT, status: "REVOKED" });
const unknown = r.unknownOrganization();
r.vat(unknown, "2025-03", "80000.00");

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  data = tempDataDir();
  r.write(data.dir);
  platform = await startPlatform(data.dir);
});

afterAll(() => tearDown(platform, data.remove));

interface VerdictBody {
  subject: string;
  outcome: string;
  reasons: string[];
  quota: number | null;
  departments: Array<{ department: string }>;
}

async function verify(subjects: string[], on = D): Promise<VerdictBody[]> {
  const { body } = await platform.query<{ verify: VerdictBody[] }>(
    `query ($subjects: [ID!]!, $on: Date) {
      verify(policy: "${POLICY}", subjects: $subjects, on: $on) {
        subject outcome reasons quota departments { department }
      }
    }`,
    { subjects, on },
  );
  expect(body.errors).toBeUndefined();
  return body.data?.verify ?? [];
}

async function verdictOf(uscc: string, on = D) {
  const [verdict] = await verify([uscc], on);
  return { outcome: verdict?.outcome, reasons: verdict?.reasons, quota: verdict?.quota };
}

describe("VAT_INSUFFICIENT and the quota", () => {
  it("50,000.00 yuan is enough; the quota grows by one per 500,000.00 above it, at most 6", async () => {
    const verdicts = await verify(byQuota.map(([uscc]) => uscc));
    expect(verdicts.map((v) => [v.outcome, v.quota])).toEqual(
      byQuota.map(([, , quota]) => ["ELIGIBLE", quota]),
    );
    expect(verdicts[0]?.departments.map((d) => d.department)).toEqual(["tax", "market"]);
  });
  it("49,999.99 is not, and the quota is then 0", async () => {
    expect(await verdictOf(justBelow)).toEqual({
      outcome: "INELIGIBLE",
      reasons: ["VAT_INSUFFICIENT"],
      quota: 0,
    });
  });
  it("adds the year's payments, counting only those paid by D", async () => {
    expect(await verdictOf(splitOverMonths)).toMatchObject({ outcome: "ELIGIBLE", quota: 1 });
    expect(await verdictOf(paidAfterD)).toMatchObject({ reasons: ["VAT_INSUFFICIENT"] });
    expect(await verdictOf(paidAfterD, "2026-11-02")).toMatchObject({ outcome: "ELIGIBLE" });
  });
  it("counts only periods in the calendar year before D's year, paid in Beijing", async () => {
    expect(await verdictOf(wrongYears)).toMatchObject({ reasons: ["VAT_INSUFFICIENT"] });
    expect(await verdictOf(vatOutsideBeijing)).toMatchObject({ reasons: ["VAT_INSUFFICIENT"] });
    // Applying in 2025, the year counted is 2024.
    expect(await verdictOf(wrongYears, "2025-06-01")).toMatchObject({
      outcome: "ELIGIBLE",
      quota: 1,
    });
  });
});

describe("ORGANIZATION_NOT_ACTIVE, NOT_REGISTERED_IN_BEIJING", () => {
  it("a revoked or deregistered organisation is not active", async () => {
    expect(await verdictOf(revoked)).toEqual({
      outcome: "INELIGIBLE",
      reasons: ["ORGANIZATION_NOT_ACTIVE"],
      quota: 0,
    });
    expect(await verdictOf(deregistered)).toMatchObject({ reasons: ["ORGANIZATION_NOT_ACTIVE"] });
  });
  it("an organisation registered outside Beijing does not qualify, whatever its Beijing VAT", async () => {
    expect(await verdictOf(hebei)).toMatchObject({
      reasons: ["NOT_REGISTERED_IN_BEIJING"],
      quota: 0,
    });
  });
  it("every failed requirement, in order", async () => {
    expect(await verdictOf(failsEverything)).toMatchObject({
      reasons: ["ORGANIZATION_NOT_ACTIVE", "NOT_REGISTERED_IN_BEIJING", "VAT_INSUFFICIENT"],
    });
  });
});

describe("identifiers", () => {
  it("SUBJECT_NOT_FOUND alone for a code the market register does not hold", async () => {
    expect(await verdictOf(unknown)).toEqual({
      outcome: "INELIGIBLE",
      reasons: ["SUBJECT_NOT_FOUND"],
      quota: 0,
    });
  });
  it("INVALID_ID for a malformed code, and for a person's identity number", async () => {
    const wrongCheck = `${justBelow.slice(0, 17)}${justBelow[17] === "1" ? "2" : "1"}`;
    for (const subject of [wrongCheck, "110105198503121015", "91110105MA01ABC1X"]) {
      expect(await verdictOf(subject)).toEqual({
        outcome: "INVALID",
        reasons: ["INVALID_ID"],
        quota: 0,
      });
    }
  });
});
