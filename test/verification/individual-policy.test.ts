/**
 * `beijing-car-lottery/individual`, every requirement of policies.md with its boundaries, through
 * the real gateway over HTTP, over records written through the import contract.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDataDir } from "../helpers.ts";
import { type Platform, startPlatform, tearDown } from "../platform.ts";
import { BEIJING_DISTRICT, D, HEBEI_DISTRICT, qualifiedMigrant, Records } from "./records.ts";

const POLICY = "beijing-car-lottery/individual";
const records = new Records();
const r = records;

// 1–2: alive, 18 on D.
const eligibleBeijinger = r.person();
r.licence(eligibleBeijinger);
const deceased = r.person({ diedOn: "2026-01-01" });
r.licence(deceased);
const eighteenOnD = r.person({ birthDate: "2008-11-01" });
r.licence(eighteenOnD);
const eighteenTomorrow = r.person({ birthDate: "2008-11-02" });
r.licence(eighteenTomorrow);
const bornOnLeapDay = r.person({ birthDate: "2008-02-29" });
r.licence(bornOnLeapDay);

// 3a/3b/3c.
const workPermitHolder = r.person({ region: HEBEI_DISTRICT });
r.permit(workPermitHolder, "WORK_RESIDENCE", "2024-01-01", D).licence(workPermitHolder);
const workPermitExpired = r.person({ region: HEBEI_DISTRICT });
r.permit(workPermitExpired, "WORK_RESIDENCE", "2020-01-01", "2026-10-31").licence(
  workPermitExpired,
);
const workPermitOutsideBeijing = r.person({ region: HEBEI_DISTRICT });
r.permit(workPermitOutsideBeijing, "WORK_RESIDENCE", "2020-01-01", "2030-01-01", HEBEI_DISTRICT);
r.licence(workPermitOutsideBeijing);
const migrant = qualifiedMigrant(r);
const migrantPermitFromD = r.person({ region: HEBEI_DISTRICT });
r.permit(migrantPermitFromD, "RESIDENCE", D, "2031-01-01")
  .contributions(migrantPermitFromD, "2021-11", "2026-10")
  .incomeTaxYears(migrantPermitFromD, 2021, 2025)
  .licence(migrantPermitFromD);
const migrantPermitEndedBeforeD = r.person({ region: HEBEI_DISTRICT });
r.permit(migrantPermitEndedBeforeD, "RESIDENCE", "2020-01-01", "2026-10-31")
  .contributions(migrantPermitEndedBeforeD, "2021-11", "2026-10")
  .incomeTaxYears(migrantPermitEndedBeforeD, 2021, 2025)
  .licence(migrantPermitEndedBeforeD);
const migrantWithoutPermit = r.person({ region: HEBEI_DISTRICT });
r.contributions(migrantWithoutPermit, "2021-11", "2026-10")
  .incomeTaxYears(migrantWithoutPermit, 2021, 2025)
  .licence(migrantWithoutPermit);

/** A migrant with a valid permit, a licence and the given histories. */
function migrantWith(history: (id: string) => void): string {
  const id = r.person({ region: HEBEI_DISTRICT });
  r.permit(id, "RESIDENCE").licence(id);
  history(id);
  return id;
}
// The 60-month window, 2021-11 … 2026-10: its edges, and months outside it that do not help.
const windowShiftedEarlier = migrantWith((id) => {
  r.contributions(id, "2021-10", "2026-09").incomeTaxYears(id, 2021, 2025);
});
const windowShiftedLater = migrantWith((id) => {
  r.contributions(id, "2021-12", "2026-11", { paidOn: { "2026-11": "2026-11-01" } });
  r.incomeTaxYears(id, 2021, 2025);
});
const windowFirstMonthMissing = migrantWith((id) => {
  r.contributions(id, "2016-01", "2026-10", { except: ["2021-11"] }).incomeTaxYears(id, 2021, 2025);
});
const windowLastMonthMissing = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-09").incomeTaxYears(id, 2021, 2025);
});
const windowMonthOutsideBeijing = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10", { except: ["2024-02"] });
  r.add("social", {
    kind: "contribution",
    personId: id,
    month: "2024-02",
    region: HEBEI_DISTRICT,
    paidOn: "2024-02-15",
  });
  r.incomeTaxYears(id, 2021, 2025);
});
// Back payment (补缴): counts when paid by D, not when paid after D.
const backPaidOnD = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10", { paidOn: { "2023-04": D } }).incomeTaxYears(
    id,
    2021,
    2025,
  );
});
const backPaidAfterD = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10", { paidOn: { "2023-04": "2026-11-02" } });
  r.incomeTaxYears(id, 2021, 2025);
});
// The 5 tax years, 2021 … 2025.
const taxFirstYearMissing = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10").incomeTaxYears(id, 2022, 2026);
});
const taxLastYearPaidAfterD = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10").incomeTaxYears(id, 2021, 2024);
  r.incomeTax(id, "2025-12", "300.00", "2026-11-02");
});
const taxLastYearPaidOnD = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10").incomeTaxYears(id, 2021, 2024);
  r.incomeTax(id, "2025-12", "300.00", D);
});
const taxYearOnlyZero = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10").incomeTaxYears(id, 2021, 2024);
  r.incomeTax(id, "2025-03", "0.00");
});
const taxYearOneFen = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10").incomeTaxYears(id, 2021, 2024);
  r.incomeTax(id, "2025-03", "0.01");
});
const taxYearOutsideBeijing = migrantWith((id) => {
  r.contributions(id, "2021-11", "2026-10").incomeTaxYears(id, 2022, 2025);
  r.incomeTax(id, "2021-06", "500.00", undefined, HEBEI_DISTRICT);
});

// 4: licence.
const licenceIssuedOnD = r.person();
r.licence(licenceIssuedOnD, D, "2032-11-01");
const licenceIssuedAfterD = r.person();
r.licence(licenceIssuedAfterD, "2026-11-02", "2032-11-02");
const licenceValidUntilD = r.person();
r.licence(licenceValidUntilD, "2016-11-01", D);
const licenceExpiredBeforeD = r.person();
r.licence(licenceExpiredBeforeD, "2016-10-31", "2026-10-31");
const licenceSuspended = r.person();
r.licence(licenceSuspended, "2016-01-01", "2030-01-01", "SUSPENDED");
const licenceRevokedAndRenewed = r.person();
r.licence(licenceRevokedAndRenewed, "2010-01-01", "2030-01-01", "REVOKED");
r.licence(licenceRevokedAndRenewed, "2020-01-01", "2030-01-01");
const withoutLicence = r.person();

// 5: passenger cars in Beijing on D.
const carRegisteredOnD = r.person();
r.licence(carRegisteredOnD).vehicle(carRegisteredOnD, D);
const carRegisteredAfterD = r.person();
r.licence(carRegisteredAfterD).vehicle(carRegisteredAfterD, "2026-11-02");
const carDeregisteredOnD = r.person();
r.licence(carDeregisteredOnD).vehicle(carDeregisteredOnD, "2015-01-01", D);
const carDeregisteredAfterD = r.person();
r.licence(carDeregisteredAfterD).vehicle(carDeregisteredAfterD, "2015-01-01", "2026-11-02");
const carOutsideBeijing = r.person();
r.licence(carOutsideBeijing).vehicle(carOutsideBeijing, "2015-01-01", null, HEBEI_DISTRICT);
const truckInBeijing = r.person();
r.licence(truckInBeijing).vehicle(truckInBeijing, "2015-01-01", null, BEIJING_DISTRICT, "TRUCK");

// Everything at once, and the identifiers.
const failsEverything = r.person({
  birthDate: "2010-06-06",
  region: HEBEI_DISTRICT,
  diedOn: "2025-01-01",
});
r.vehicle(failsEverything, "2020-01-01");
const notRegistered = r.unknownPerson();
r.licence(notRegistered).vehicle(notRegistered, "2020-01-01");

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  data = tempDataDir();
  records.write(data.dir);
  platform = await startPlatform(data.dir);
});

afterAll(() => tearDown(platform, data.remove));

interface VerdictBody {
  subject: string;
  outcome: string;
  reasons: string[];
  unavailable: string[];
  quota: number | null;
  departments: Array<{ department: string; asOf: string }>;
}

async function verify(subjects: string[], on = D): Promise<VerdictBody[]> {
  const { status, body } = await platform.query<{ verify: VerdictBody[] }>(
    `query ($subjects: [ID!]!, $on: Date) {
      verify(policy: "${POLICY}", subjects: $subjects, on: $on) {
        subject outcome reasons unavailable quota departments { department asOf }
      }
    }`,
    { subjects, on },
  );
  expect(body.errors).toBeUndefined();
  expect(status).toBe(200);
  return body.data?.verify ?? [];
}

async function verdictOf(
  subject: string,
  on = D,
): Promise<Pick<VerdictBody, "outcome" | "reasons">> {
  const [verdict] = await verify([subject], on);
  return { outcome: verdict?.outcome ?? "", reasons: verdict?.reasons ?? [] };
}

const eligible = { outcome: "ELIGIBLE", reasons: [] };
const ineligible = (...reasons: string[]) => ({ outcome: "INELIGIBLE", reasons });

describe("1. DECEASED and 2. UNDERAGE", () => {
  it("a living Beijing adult with a licence and no car is eligible", async () => {
    expect(await verdictOf(eligibleBeijinger)).toEqual(eligible);
  });
  it("a deceased person is not", async () => {
    expect(await verdictOf(deceased)).toEqual(ineligible("DECEASED"));
  });
  it("the 18th birthday itself counts", async () => {
    expect(await verdictOf(eighteenOnD)).toEqual(eligible);
    expect(await verdictOf(eighteenTomorrow)).toEqual(ineligible("UNDERAGE"));
    // The day before: 17.
    expect(await verdictOf(eighteenOnD, "2026-10-31")).toEqual(ineligible("UNDERAGE"));
  });
  it("someone born on 29 February turns 18 on 1 March of a common year", async () => {
    expect(await verdictOf(bornOnLeapDay, "2026-02-28")).toEqual(ineligible("UNDERAGE"));
    expect(await verdictOf(bornOnLeapDay, "2026-03-01")).toEqual(eligible);
  });
});

describe("3. NO_RESIDENCY_QUALIFICATION", () => {
  it("3a: a Beijing hukou qualifies without social insurance or tax being asked", async () => {
    const [verdict] = await verify([eligibleBeijinger]);
    expect(verdict?.departments.map((d) => d.department)).toEqual(["hukou", "traffic"]);
  });
  it("3b: a Beijing work-residence permit valid on D (validTo = D) qualifies", async () => {
    expect(await verdictOf(workPermitHolder)).toEqual(eligible);
    expect(await verdictOf(workPermitExpired)).toEqual(ineligible("NO_RESIDENCY_QUALIFICATION"));
    expect(await verdictOf(workPermitOutsideBeijing)).toEqual(
      ineligible("NO_RESIDENCY_QUALIFICATION"),
    );
  });
  it("3c: a residence permit, 60 months of insurance and 5 tax years qualify, asking social and tax", async () => {
    const [verdict] = await verify([migrant]);
    expect(verdict).toMatchObject(eligible);
    expect(verdict?.departments.map((d) => d.department)).toEqual([
      "hukou",
      "traffic",
      "social",
      "tax",
    ]);
  });
  it("3c: the residence permit must be valid on D (validFrom = D counts)", async () => {
    expect(await verdictOf(migrantPermitFromD)).toEqual(eligible);
    expect(await verdictOf(migrantPermitEndedBeforeD)).toEqual(
      ineligible("NO_RESIDENCY_QUALIFICATION"),
    );
    expect(await verdictOf(migrantWithoutPermit)).toEqual(ineligible("NO_RESIDENCY_QUALIFICATION"));
  });
  it("3c: every month 2021-11 … 2026-10 insured in Beijing, the window's edges included", async () => {
    for (const id of [
      windowShiftedEarlier,
      windowShiftedLater,
      windowFirstMonthMissing,
      windowLastMonthMissing,
      windowMonthOutsideBeijing,
    ]) {
      expect(await verdictOf(id)).toEqual(ineligible("NO_RESIDENCY_QUALIFICATION"));
    }
    // One application month later the shifted-later history fits its window (2021-12 … 2026-11).
    expect(await verdictOf(windowShiftedLater, "2026-12-01")).toEqual(eligible);
  });
  it("3c: a back-paid month counts when paid by D, not after", async () => {
    expect(await verdictOf(backPaidOnD)).toEqual(eligible);
    expect(await verdictOf(backPaidAfterD)).toEqual(ineligible("NO_RESIDENCY_QUALIFICATION"));
    expect(await verdictOf(backPaidAfterD, "2026-11-02")).toEqual(eligible);
  });
  it("3c: Beijing income tax above 0 in each of 2021 … 2025, paid by D", async () => {
    expect(await verdictOf(taxFirstYearMissing)).toEqual(ineligible("NO_RESIDENCY_QUALIFICATION"));
    expect(await verdictOf(taxLastYearPaidAfterD)).toEqual(
      ineligible("NO_RESIDENCY_QUALIFICATION"),
    );
    expect(await verdictOf(taxLastYearPaidOnD)).toEqual(eligible);
    expect(await verdictOf(taxYearOnlyZero)).toEqual(ineligible("NO_RESIDENCY_QUALIFICATION"));
    expect(await verdictOf(taxYearOneFen)).toEqual(eligible);
    expect(await verdictOf(taxYearOutsideBeijing)).toEqual(
      ineligible("NO_RESIDENCY_QUALIFICATION"),
    );
  });
});

describe("4. NO_VALID_DRIVER_LICENSE", () => {
  it("a VALID licence with issuedOn ≤ D ≤ validUntil, both ends included", async () => {
    expect(await verdictOf(licenceIssuedOnD)).toEqual(eligible);
    expect(await verdictOf(licenceValidUntilD)).toEqual(eligible);
    expect(await verdictOf(licenceRevokedAndRenewed)).toEqual(eligible);
  });
  it("not issued yet, expired, suspended, or none at all", async () => {
    for (const id of [
      licenceIssuedAfterD,
      licenceExpiredBeforeD,
      licenceSuspended,
      withoutLicence,
    ]) {
      expect(await verdictOf(id)).toEqual(ineligible("NO_VALID_DRIVER_LICENSE"));
    }
  });
});

describe("5. OWNS_CAR_IN_BEIJING", () => {
  it("a passenger car registered in Beijing on D, or deregistered only after D, is owned on D", async () => {
    expect(await verdictOf(carRegisteredOnD)).toEqual(ineligible("OWNS_CAR_IN_BEIJING"));
    expect(await verdictOf(carDeregisteredAfterD)).toEqual(ineligible("OWNS_CAR_IN_BEIJING"));
  });
  it("registered after D, deregistered on D, outside Beijing or not a passenger car: not", async () => {
    for (const id of [carRegisteredAfterD, carDeregisteredOnD, carOutsideBeijing, truckInBeijing]) {
      expect(await verdictOf(id)).toEqual(eligible);
    }
    expect(await verdictOf(carRegisteredOnD, "2026-10-31")).toEqual(eligible);
  });
});

describe("outcomes and reasons", () => {
  it("lists every failed requirement in the policy's order, without duplicates", async () => {
    expect(await verdictOf(failsEverything)).toEqual(
      ineligible(
        "DECEASED",
        "UNDERAGE",
        "NO_RESIDENCY_QUALIFICATION",
        "NO_VALID_DRIVER_LICENSE",
        "OWNS_CAR_IN_BEIJING",
      ),
    );
  });
  it("SUBJECT_NOT_FOUND stands alone, whatever other departments hold", async () => {
    const [verdict] = await verify([notRegistered]);
    expect(verdict).toMatchObject({
      outcome: "INELIGIBLE",
      reasons: ["SUBJECT_NOT_FOUND"],
      unavailable: [],
    });
    expect(verdict?.departments.map((d) => d.department)).toEqual(["hukou"]);
  });
  it("a malformed id is INVALID with INVALID_ID (check character included), asking nobody", async () => {
    const wrongCheck = `${eligibleBeijinger.slice(0, 17)}${eligibleBeijinger[17] === "1" ? "2" : "1"}`;
    const verdicts = await verify([wrongCheck, "110105199013131234", "abc", ""]);
    for (const verdict of verdicts) {
      expect(verdict).toMatchObject({
        outcome: "INVALID",
        reasons: ["INVALID_ID"],
        departments: [],
      });
    }
    expect(verdicts.map((v) => v.subject)).toEqual([wrongCheck, "110105199013131234", "ABC", ""]);
  });
  it("answers in the order asked, duplicates included, subjects normalised to upper case", async () => {
    const published = "11010519491231002x";
    const verdicts = await verify([deceased, eligibleBeijinger, deceased, published]);
    expect(verdicts.map((v) => [v.subject, v.outcome])).toEqual([
      [deceased, "INELIGIBLE"],
      [eligibleBeijinger, "ELIGIBLE"],
      [deceased, "INELIGIBLE"],
      ["11010519491231002X", "INELIGIBLE"],
    ]);
    expect(verdicts[3]?.reasons).toEqual(["SUBJECT_NOT_FOUND"]);
  });
  it("a quota is no part of this policy", async () => {
    const [verdict] = await verify([eligibleBeijinger]);
    expect(verdict?.quota).toBeNull();
  });
});
