/**
 * Beijing passenger-car quota lottery (北京市小客车指标摇号), organisations (单位): the checks of
 * `docs/spec/policies.md`, § `beijing-car-lottery/organization`. The tax bureau answers with one total for
 * the year; the quota grows with it, one quota per 500,000.00 yuan above 50,000.00, at most 6.
 */
import { parseMoney } from "../../common/values.ts";
import { definePolicy, known } from "../policy.ts";

const BEIJING = "110000";
/** 50,000.00 yuan, in fen. */
const VAT_THRESHOLD = 5_000_000;
/** 500,000.00 yuan, in fen: one more quota per step above the threshold. */
const VAT_QUOTA_STEP = 50_000_000;
const MAX_QUOTA = 6;

type OrganizationFacts = {
  market: { active: boolean; registeredInBeijing: boolean };
  tax: { vatTotal: string };
};

function variables(on: string) {
  return { on, vatYear: Number(on.slice(0, 4)) - 1 };
}

type Variables = ReturnType<typeof variables>;

/** The year's Beijing VAT paid by D, in fen (Money arrives as a decimal string). */
function vatFen(facts: Partial<OrganizationFacts>): number | undefined {
  return known(facts.tax, (tax) => {
    const fen = parseMoney(tax.vatTotal);
    if (fen === null) throw new Error(`tax answered a malformed vatTotal "${tax.vatTotal}"`);
    return fen;
  });
}

export default definePolicy<OrganizationFacts, Variables>({
  name: "beijing-car-lottery/organization",
  version: "2026.1",
  description:
    "Beijing passenger-car quota lottery, organisation applicant (北京市小客车指标摇号 单位资格审核): registered ACTIVE, registered in Beijing, and at least 50,000.00 yuan of Beijing VAT for periods in the calendar year before the application date D, paid by D. The quota is min(6, 1 + floor((total − 50,000.00) / 500,000.00)).",
  subjectKind: "ORGANIZATION",
  variables,
  stages: [
    {
      operation: /* GraphQL */ `
        query OrganizationCarLotteryFacts($ids: [ID!]!, $on: Date!, $vatYear: Int!) {
          market: organizations(usccs: $ids) {
            active
            registeredInBeijing: registeredWithin(region: "${BEIJING}")
          }
          tax: organizations(usccs: $ids) {
            vatTotal(year: $vatYear, region: "${BEIJING}", paidBy: $on)
          }
        }`,
    },
  ],
  requirements: [
    {
      reason: "ORGANIZATION_NOT_ACTIVE",
      description: "The organisation's status in the market register is ACTIVE.",
      departments: ["market"],
      met: ({ market }) => known(market, (m) => m.active),
    },
    {
      reason: "NOT_REGISTERED_IN_BEIJING",
      description: "The organisation's region of registration is in Beijing.",
      departments: ["market"],
      met: ({ market }) => known(market, (m) => m.registeredInBeijing),
    },
    {
      reason: "VAT_INSUFFICIENT",
      description:
        "VAT for periods in the calendar year before D's year, paid in Beijing by D, adds up to at least 50,000.00 yuan.",
      departments: ["tax"],
      met: (facts) => known(vatFen(facts), (fen) => fen >= VAT_THRESHOLD),
    },
  ],
  quota: (facts) => {
    const fen = vatFen(facts) ?? 0;
    return Math.min(MAX_QUOTA, 1 + Math.floor((fen - VAT_THRESHOLD) / VAT_QUOTA_STEP));
  },
});
