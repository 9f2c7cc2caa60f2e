/**
 * Beijing passenger-car quota lottery (北京市小客车指标摇号), individual applicants: the checks of
 * `docs/spec/policies.md`, § `beijing-car-lottery/individual`. Requirement 3 (residency) is met by a Beijing
 * hukou (3a) or a valid Beijing work-residence permit (3b) from the household register alone; only
 * an applicant relying on an ordinary residence permit (3c) is asked about in a second stage, with
 * their social-insurance months and income-tax years — the departments answer with a count and a
 * list of years, never the contribution or tax ledgers.
 */
import { addMonths } from "../../common/values.ts";
import { all, any, definePolicy, known } from "../policy.ts";

const BEIJING = "110000";
/** Months of Beijing social insurance required, ending with the month before the application month. */
const INSURED_MONTHS = 60;
/** Calendar years of Beijing income tax required, the years before the application year. */
const TAX_YEARS = 5;

type IndividualFacts = {
  hukou: {
    alive: boolean;
    ageOn: number;
    beijingHukou: boolean;
    workResidencePermit: boolean;
    residencePermit: boolean;
  };
  traffic: { validDriverLicense: boolean; passengerCarInBeijing: boolean };
  social: { insuredMonths: number };
  tax: { incomeTaxYears: number[] };
};

function variables(on: string) {
  const applicationMonth = on.slice(0, 7);
  const year = Number(on.slice(0, 4));
  return {
    on,
    firstInsuredMonth: addMonths(applicationMonth, -INSURED_MONTHS),
    lastInsuredMonth: addMonths(applicationMonth, -1),
    firstTaxYear: year - TAX_YEARS,
    lastTaxYear: year - 1,
  };
}

type Variables = ReturnType<typeof variables>;

/** 3c without the permit: every one of the 60 months insured in Beijing, paid by D. */
function socialInsuranceComplete(facts: Partial<IndividualFacts>): boolean | undefined {
  return known(facts.social, (social) => social.insuredMonths >= INSURED_MONTHS);
}

/** 3c without the permit: Beijing income tax above 0 in each of the 5 years, paid by D. */
function incomeTaxComplete(facts: Partial<IndividualFacts>): boolean | undefined {
  return known(facts.tax, (tax) => tax.incomeTaxYears.length >= TAX_YEARS);
}

export default definePolicy<IndividualFacts, Variables>({
  name: "beijing-car-lottery/individual",
  version: "2026.1",
  description:
    "Beijing passenger-car quota lottery, individual applicant (北京市小客车指标摇号 个人资格审核): alive, 18 or older on the application date D, a Beijing residency qualification (Beijing hukou, a valid Beijing work-residence permit, or a valid Beijing residence permit with 60 months of Beijing social insurance and 5 years of Beijing income tax paid by D), a valid driver's licence on D, and no passenger car registered in Beijing on D.",
  subjectKind: "PERSON",
  variables,
  stages: [
    {
      operation: /* GraphQL */ `
        query IndividualCarLotteryFacts($ids: [ID!]!, $on: Date!) {
          hukou: people(ids: $ids) {
            alive
            ageOn(on: $on)
            beijingHukou: hukouWithin(region: "${BEIJING}")
            workResidencePermit: hasValidResidencePermit(kind: WORK_RESIDENCE, region: "${BEIJING}", on: $on)
            residencePermit: hasValidResidencePermit(kind: RESIDENCE, region: "${BEIJING}", on: $on)
          }
          traffic: people(ids: $ids) {
            validDriverLicense: hasValidDriverLicense(on: $on)
            passengerCarInBeijing: ownsVehicle(kind: PASSENGER_CAR, region: "${BEIJING}", on: $on)
          }
        }`,
    },
    {
      // Requirement 3c, only for applicants whose residency rests on an ordinary residence permit.
      operation: /* GraphQL */ `
        query IndividualCarLotteryResidencyHistory(
          $ids: [ID!]!
          $on: Date!
          $firstInsuredMonth: YearMonth!
          $lastInsuredMonth: YearMonth!
          $firstTaxYear: Int!
          $lastTaxYear: Int!
        ) {
          social: people(ids: $ids) {
            insuredMonths(region: "${BEIJING}", from: $firstInsuredMonth, to: $lastInsuredMonth, paidBy: $on)
          }
          tax: people(ids: $ids) {
            incomeTaxYears(region: "${BEIJING}", fromYear: $firstTaxYear, toYear: $lastTaxYear, paidBy: $on)
          }
        }`,
      neededFor: ({ hukou }) =>
        hukou !== undefined &&
        !hukou.beijingHukou &&
        !hukou.workResidencePermit &&
        hukou.residencePermit,
    },
  ],
  requirements: [
    {
      reason: "DECEASED",
      description: "The person's status in the household register is ALIVE.",
      departments: ["hukou"],
      met: ({ hukou }) => known(hukou, (h) => h.alive),
    },
    {
      reason: "UNDERAGE",
      description: "The person is 18 or older on D (the 18th birthday itself counts).",
      departments: ["hukou"],
      met: ({ hukou }) => known(hukou, (h) => h.ageOn >= 18),
    },
    {
      reason: "NO_RESIDENCY_QUALIFICATION",
      description:
        "A Beijing hukou; or a Beijing work-residence permit valid on D; or a Beijing residence permit valid on D with social insurance in Beijing for each of the 60 months ending with the month before D's month and Beijing income tax above 0 in each of the 5 calendar years before D's year, all paid by D.",
      departments: ["hukou", "social", "tax"],
      met: (facts) =>
        any(
          known(facts.hukou, (h) => h.beijingHukou),
          known(facts.hukou, (h) => h.workResidencePermit),
          all(
            known(facts.hukou, (h) => h.residencePermit),
            socialInsuranceComplete(facts),
            incomeTaxComplete(facts),
          ),
        ),
    },
    {
      reason: "NO_VALID_DRIVER_LICENSE",
      description: "Some driver's licence with status VALID and issuedOn ≤ D ≤ validUntil.",
      departments: ["traffic"],
      met: ({ traffic }) => known(traffic, (t) => t.validDriverLicense),
    },
    {
      reason: "OWNS_CAR_IN_BEIJING",
      description:
        "No passenger car registered to the person in Beijing on D (registeredOn ≤ D and not deregistered on or before D).",
      departments: ["traffic"],
      met: ({ traffic }) => known(traffic, (t) => !t.passengerCarInBeijing),
    },
  ],
});
