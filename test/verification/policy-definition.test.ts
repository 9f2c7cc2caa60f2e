/** Policy files are checked when they load: a broken definition fails fast, with a reason. */
import { describe, expect, it } from "vitest";
import { all, any, definePolicy, not } from "../../policies/policy.ts";
import { POLICIES } from "../../policies/registry.ts";

const minimal = {
  name: "test/minimal",
  version: "1",
  description: "test",
  subjectKind: "PERSON" as const,
  variables: (on: string) => ({ on }),
  requirements: [],
};

describe("definePolicy", () => {
  it("derives the scope, the departments and each stage's aliases, variables and facts", () => {
    const policy = definePolicy({
      ...minimal,
      stages: [
        {
          operation: `query ($ids: [ID!]!, $on: Date!) {
            hukou: people(ids: $ids) { alive adult: ageOn(on: $on) }
            civil: people(ids: $ids) { maritalStatus(on: $on) }
          }`,
        },
      ],
    });
    expect(policy.scope).toBe("verify:test/minimal");
    expect(policy.departments).toEqual(["hukou", "civil"]);
    expect(policy.stagePlans).toEqual([
      {
        aliases: ["hukou", "civil"],
        variableNames: ["ids", "on"],
        fieldsByAlias: { hukou: ["Person.alive", "Person.ageOn"], civil: ["Person.maritalStatus"] },
      },
    ]);
  });

  it.each([
    [
      "a root field not aliased by a department",
      `query ($ids: [ID!]!) { people(ids: $ids) { alive } }`,
    ],
    [
      "an alias that is no department",
      `query ($ids: [ID!]!) { police: people(ids: $ids) { alive } }`,
    ],
    ["no $ids", `query { hukou: people(ids: []) { alive } }`],
    [
      "the wrong root field",
      `query ($ids: [ID!]!) { hukou: organizations(usccs: $ids) { active } }`,
    ],
    [
      "a first stage without the owning register",
      `query ($ids: [ID!]!) { traffic: people(ids: $ids) { hasValidDriverLicense } }`,
    ],
    [
      "two operations",
      `query A($ids: [ID!]!) { hukou: people(ids: $ids) { alive } } query B { __typename }`,
    ],
  ])("refuses %s", (_, operation) => {
    expect(() => definePolicy({ ...minimal, stages: [{ operation }] })).toThrow(
      /policy test\/minimal/,
    );
  });

  it("refuses reserved and duplicate reason codes, and names that are not paths", () => {
    const stages = [{ operation: `query ($ids: [ID!]!) { hukou: people(ids: $ids) { alive } }` }];
    const requirement = { description: "", departments: ["hukou" as const], met: () => true };
    expect(() =>
      definePolicy({
        ...minimal,
        stages,
        requirements: [{ ...requirement, reason: "SUBJECT_NOT_FOUND" }],
      }),
    ).toThrow(/reserved/);
    expect(() =>
      definePolicy({
        ...minimal,
        stages,
        requirements: [
          { ...requirement, reason: "A" },
          { ...requirement, reason: "A" },
        ],
      }),
    ).toThrow(/unique/);
    expect(() => definePolicy({ ...minimal, name: "Minimal", stages })).toThrow(/lower-case/);
  });

  it("the shipped policies load, each with a version", () => {
    expect(POLICIES.map((policy) => `${policy.name}@${policy.version}`)).toEqual([
      "beijing-car-lottery/individual@2026.1",
      "beijing-car-lottery/organization@2026.1",
    ]);
  });
});

describe("three-valued logic", () => {
  it("a missing fact (undefined) decides nothing unless another value already does", () => {
    expect(all(true, undefined)).toBeUndefined();
    expect(all(false, undefined)).toBe(false);
    expect(all(true, true)).toBe(true);
    expect(any(false, undefined)).toBeUndefined();
    expect(any(true, undefined)).toBe(true);
    expect(any(false, false)).toBe(false);
    expect(not(undefined)).toBeUndefined();
    expect(not(false)).toBe(true);
  });
});
