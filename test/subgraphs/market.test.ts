import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId, makeUscc } from "../../common/ids.ts";
import { buildMarketSubgraph } from "../../subgraphs/market/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

const representative = makePersonId("110105", "1970-03-15", 11);
const otherRepresentative = makePersonId("130102", "1982-07-01", 22);
const representsNothing = makePersonId("120101", "1990-12-31", 33);

const beijingActive = makeUscc("110105", "MA0000011");
const hebeiRevoked = makeUscc("130102", "MA0000022");
const deregistered = makeUscc("110108", "MA0000033");
const unknown = makeUscc("310101", "MA0000044");

function withWrongCheckCharacter(code: string): string {
  const wrong = code.endsWith("0") ? "1" : "0";
  return code.slice(0, 17) + wrong;
}

describe("market subgraph", () => {
  const data = tempDataDir();
  let app: FastifyInstance;

  beforeAll(async () => {
    writeRecords("market", data.dir, [
      {
        kind: "organization",
        uscc: beijingActive,
        name: "北京朝阳示例科技有限公司",
        orgKind: "ENTERPRISE",
        legalRepresentativeId: representative,
        region: "110105",
        status: "ACTIVE",
        establishedOn: "2015-06-01",
      },
      {
        kind: "organization",
        uscc: hebeiRevoked,
        name: "石家庄长安示例商行",
        orgKind: "INDIVIDUAL_BUSINESS",
        legalRepresentativeId: representative,
        region: "130102",
        status: "REVOKED",
        establishedOn: "2010-01-20",
      },
      {
        kind: "organization",
        uscc: deregistered,
        name: "北京海淀示例协会",
        orgKind: "SOCIAL_ORGANIZATION",
        legalRepresentativeId: otherRepresentative,
        region: "110108",
        status: "DEREGISTERED",
        establishedOn: "2001-09-09",
      },
    ]);
    app = await buildMarketSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
  });

  afterAll(async () => {
    await app?.close();
    data.remove();
  });

  it("answers an organisation's register facts", async () => {
    const result = await inject(
      app,
      `query ($uscc: ID!) {
        organization(uscc: $uscc) {
          uscc name kind status active establishedOn
          region { code name province }
          inBeijing: registeredWithin(region: "110000")
          inHebei: registeredWithin(region: "130000")
          legalRepresentative { id }
        }
      }`,
      { uscc: beijingActive },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      organization: {
        uscc: beijingActive,
        name: "北京朝阳示例科技有限公司",
        kind: "ENTERPRISE",
        status: "ACTIVE",
        active: true,
        establishedOn: "2015-06-01",
        region: { code: "110105", name: "北京市朝阳区", province: "北京市" },
        inBeijing: true,
        inHebei: false,
        legalRepresentative: { id: representative },
      },
    });
  });

  it("reports a revoked organisation as not active", async () => {
    const result = await inject(app, `{ organization(uscc: "${hebeiRevoked}") { status active } }`);
    expect(result.data).toEqual({ organization: { status: "REVOKED", active: false } });
  });

  it("answers null for a well-formed code the register does not hold", async () => {
    const result = await inject(app, `{ organization(uscc: "${unknown}") { name } }`);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ organization: null });
  });

  it("answers several organisations in the order asked, null where unknown", async () => {
    const result = await inject(
      app,
      `query ($usccs: [ID!]!) { organizations(usccs: $usccs) { uscc name } }`,
      { usccs: [hebeiRevoked, unknown, beijingActive, deregistered] },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      organizations: [
        { uscc: hebeiRevoked, name: "石家庄长安示例商行" },
        null,
        { uscc: beijingActive, name: "北京朝阳示例科技有限公司" },
        { uscc: deregistered, name: "北京海淀示例协会" },
      ],
    });
  });

  it("refuses a code with a wrong check character, naming the argument", async () => {
    const malformed = withWrongCheckCharacter(beijingActive);
    const result = await inject(app, `query ($uscc: ID!) { organization(uscc: $uscc) { name } }`, {
      uscc: malformed,
    });
    expect(result.data).toEqual({ organization: null });
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "uscc",
      value: malformed,
    });
    expect(result.errors?.[0]?.message).toMatch(/check character/);
  });

  it("refuses a list with one malformed code, naming its position", async () => {
    const result = await inject(
      app,
      `query ($usccs: [ID!]!) { organizations(usccs: $usccs) { name } }`,
      { usccs: [beijingActive, withWrongCheckCharacter(hebeiRevoked)] },
    );
    expect(result.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "usccs[1]",
    });
  });

  it("refuses a region that is not a division code", async () => {
    const result = await inject(
      app,
      `{ organization(uscc: "${beijingActive}") { registeredWithin(region: "119999") } }`,
    );
    expect(result.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      argument: "region",
    });
  });

  it("resolves Organization references in order, null for unknown codes", async () => {
    const result = await inject(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) { ... on Organization { uscc name active } }
      }`,
      {
        representations: [
          { __typename: "Organization", uscc: deregistered },
          { __typename: "Organization", uscc: unknown },
          { __typename: "Organization", uscc: beijingActive },
        ],
      },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      _entities: [
        { uscc: deregistered, name: "北京海淀示例协会", active: false },
        null,
        { uscc: beijingActive, name: "北京朝阳示例科技有限公司", active: true },
      ],
    });
  });

  it("lists the organisations a person represents, optionally by status", async () => {
    const result = await inject(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) {
          ... on Person {
            id
            all: legalRepresentativeOf { uscc status }
            active: legalRepresentativeOf(status: ACTIVE) { uscc }
            revoked: legalRepresentativeOf(status: REVOKED) { uscc }
          }
        }
      }`,
      {
        representations: [
          { __typename: "Person", id: representative },
          { __typename: "Person", id: representsNothing },
          { __typename: "Person", id: otherRepresentative },
        ],
      },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      _entities: [
        {
          id: representative,
          // Oldest establishment first.
          all: [
            { uscc: hebeiRevoked, status: "REVOKED" },
            { uscc: beijingActive, status: "ACTIVE" },
          ],
          active: [{ uscc: beijingActive }],
          revoked: [{ uscc: hebeiRevoked }],
        },
        { id: representsNothing, all: [], active: [], revoked: [] },
        {
          id: otherRepresentative,
          all: [{ uscc: deregistered, status: "DEREGISTERED" }],
          active: [],
          revoked: [],
        },
      ],
    });
  });

  it("keeps one record per code when an organisation is imported again", async () => {
    writeRecords("market", data.dir, [
      {
        kind: "organization",
        uscc: deregistered,
        name: "北京海淀示例协会",
        orgKind: "SOCIAL_ORGANIZATION",
        legalRepresentativeId: representsNothing,
        region: "110108",
        status: "DEREGISTERED",
        establishedOn: "2001-09-09",
      },
    ]);
    const result = await inject(
      app,
      `query ($representations: [_Any!]!) {
        _entities(representations: $representations) {
          ... on Person { id legalRepresentativeOf { uscc } }
        }
      }`,
      {
        representations: [
          { __typename: "Person", id: otherRepresentative },
          { __typename: "Person", id: representsNothing },
        ],
      },
    );
    expect(result.data).toEqual({
      _entities: [
        { id: otherRepresentative, legalRepresentativeOf: [] },
        { id: representsNothing, legalRepresentativeOf: [{ uscc: deregistered }] },
      ],
    });
  });
});
