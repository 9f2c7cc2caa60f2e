/**
 * Field-level authorization and masking through the real gateway: the lottery desk learns what its
 * purpose needs (licence validity, age, hukou region) and nothing more (names, addresses, family).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuditDatabase, subjectEntries } from "../../gateway/ledger/store.ts";
import { hashKey } from "../../gateway/security/desks.ts";
import { LI_NA, WANG_QIANG, writeFixtures, ZHANG_COMPANY, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";
import { Relay } from "../relay.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
/** The civil register is reached through a relay, to see whether it was asked at all. */
const civil = new Relay();

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  platform = await startPlatform(data.dir, {
    relays: { civil },
  });
});

afterAll(() => tearDown(platform, data.remove));

/** A subject's entries as audit.db holds them, once everything acknowledged has been moved there. */
async function entriesOf(subject: string) {
  await platform.ledgerMoved();
  const sqlite = openAuditDatabase(data.dir, { existing: true });
  try {
    return subjectEntries(sqlite, subject);
  } finally {
    sqlite.close();
  }
}

describe("the lottery desk", () => {
  it("is denied the name but given licence validity in the same query", async () => {
    const { status, body } = await platform.query(
      `query Check($id: ID!) {
        person(id: $id) { name hasValidDriverLicense(on: "2026-11-01") ageOn(on: "2026-11-01") }
      }`,
      { id: ZHANG_WEI },
      LOTTERY_DESK,
    );
    expect(status).toBe(200);
    // `name` is String! in the schema: withheld, it is null without nulling the person.
    expect(body.data).toEqual({
      person: { name: null, hasValidDriverLicense: true, ageOn: 41 },
    });
    expect(body.errors).toEqual([
      {
        message: expect.stringContaining("Person.name"),
        path: ["person", "name"],
        extensions: {
          code: "FORBIDDEN",
          field: "Person.name",
          requiredScopes: [["identity:basic"]],
        },
      },
    ]);
  });

  it("gets one FORBIDDEN error per person of a list, each with its path", async () => {
    const { body } = await platform.query(
      `{ people(ids: ["${ZHANG_WEI}", "${WANG_QIANG}"]) { hukouAddress hukouWithin(region: "110000") } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body.data).toEqual({
      people: [
        { hukouAddress: null, hukouWithin: true },
        { hukouAddress: null, hukouWithin: false },
      ],
    });
    expect(body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([
      [["people", 0, "hukouAddress"], "FORBIDDEN"],
      [["people", 1, "hukouAddress"], "FORBIDDEN"],
    ]);
  });

  it("is denied fields with their own selections, inside fragments too", async () => {
    const { body } = await platform.query(
      `query Family { person(id: "${ZHANG_WEI}") { ...Facts spouse(on: "2026-11-01") { id } } }
       fragment Facts on Person { alive marriages { registeredOn } residencePermits { number } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body.data).toEqual({
      person: { alive: true, marriages: null, residencePermits: null, spouse: null },
    });
    expect(body.errors?.map((error) => error.path)).toEqual([
      ["person", "marriages"],
      ["person", "residencePermits"],
      ["person", "spouse"],
    ]);
  });

  it("never calls a department whose every field was withheld", async () => {
    // Marital status needs civil:marital-status, which the lottery purpose does not grant.
    civil.clear();
    const { body } = await platform.query(
      `query Marital { person(id: "${LI_NA}") { maritalStatus alive } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body.errors?.map((error) => error.extensions?.code)).toEqual(["FORBIDDEN"]);
    expect(civil.arrivals).toHaveLength(0);
    // (Asked for by a desk that may see it, the same field does reach civil.)
    await platform.query(`{ person(id: "${LI_NA}") { maritalStatus } }`);
    expect(civil.arrivals).toHaveLength(1);
    const [entry] = (await entriesOf(LI_NA)).filter((e) => e.operationName === "Marital");
    expect(entry?.departments).toEqual(["hukou"]);
    expect(entry?.denied).toEqual(["Person.maritalStatus"]);
    expect(entry?.fields).toEqual(["Person.alive"]);
  });

  it("sees identity numbers masked; the development desk sees them in full", async () => {
    const query = `query Ids($ids: [ID!]!) { people(ids: $ids) { id hasValidDriverLicense(on: "2026-11-01") } }`;
    const ids = [ZHANG_WEI, WANG_QIANG];
    const lottery = await platform.query(query, { ids }, LOTTERY_DESK);
    expect(lottery.body).toEqual({
      data: {
        people: [
          { id: "110105********1015", hasValidDriverLicense: true },
          { id: "130102********2113", hasValidDriverLicense: false },
        ],
      },
    });
    const development = await platform.query(query, { ids });
    expect(development.body.data?.people).toEqual([
      { id: ZHANG_WEI, hasValidDriverLicense: true },
      { id: WANG_QIANG, hasValidDriverLicense: false },
    ]);
  });

  it("sees organisations (its purpose grants market:organization) but not their representatives", async () => {
    const { body } = await platform.query(
      `{ organization(uscc: "${ZHANG_COMPANY}") { uscc status vatTotal(year: 2025) legalRepresentative { id } } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body.data).toEqual({
      organization: {
        uscc: ZHANG_COMPANY,
        status: "ACTIVE",
        vatTotal: "60000.00",
        legalRepresentative: null,
      },
    });
    expect(body.errors?.[0]?.extensions?.field).toBe("Organization.legalRepresentative");
  });

  it("is refused a citizen's access log", async () => {
    const { body } = await platform.query("{ myAccessLog { at } }", {}, LOTTERY_DESK);
    expect(body.data).toEqual({ myAccessLog: null });
    expect(body.errors?.[0]).toMatchObject({
      path: ["myAccessLog"],
      extensions: { code: "FORBIDDEN", field: "Query.myAccessLog" },
    });
  });
});

describe("nested subjects", () => {
  it("audits the spouse and the company reached through a person, and hides the keys it fetched", async () => {
    const { body } = await platform.query(
      `query Relations { person(id: "${ZHANG_WEI}") {
          spouse(on: "2026-11-01") { name }
          legalRepresentativeOf { name }
      } }`,
    );
    expect(body).toEqual({
      data: {
        person: {
          spouse: { name: "李娜" },
          legalRepresentativeOf: [{ name: "北京张氏科技有限公司" }],
        },
      },
    });
    const spouse = (await entriesOf(LI_NA)).find((entry) => entry.operationName === "Relations");
    expect(spouse).toMatchObject({
      deskId: "dev-desk",
      fields: ["Person.name"],
      outcome: "answered",
    });
    const company = (await entriesOf(ZHANG_COMPANY)).find(
      (entry) => entry.operationName === "Relations",
    );
    expect(company?.fields).toEqual(["Organization.name"]);
    const person = (await entriesOf(ZHANG_WEI)).find(
      (entry) => entry.operationName === "Relations",
    );
    expect(person?.fields).toEqual(["Person.spouse", "Person.legalRepresentativeOf"]);
  });
});

describe("the gateway's own response keys", () => {
  it("are refused as a desk's aliases, plainly", async () => {
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { spouse(on: "2026-11-01") { _mianzhengSubject: name } } }`,
    );
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([
      expect.objectContaining({
        message:
          'The response key "_mianzhengSubject" is reserved by the gateway; choose another alias',
        extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
      }),
    ]);
  });

  it("and an alias naming another field __typename, which would pass a name off as a type", async () => {
    const { body } = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { __typename: name kind: __typename } }`,
    );
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([
      expect.objectContaining({
        message: 'The response key "__typename" is reserved by the gateway; choose another alias',
        extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
      }),
    ]);
    // __typename itself, aliased or not, is what it always was.
    const plain = await platform.query(
      `{ person(id: "${ZHANG_WEI}") { __typename t: __typename } }`,
    );
    expect(plain.body).toEqual({ data: { person: { __typename: "Person", t: "Person" } } });
  });
});

describe("withheld fields in unusual places", () => {
  it("answers a withheld field of a person nobody holds with one error without a path", async () => {
    const { body } = await platform.query(
      `{ person(id: "110105200001010016") { name } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body.data).toEqual({ person: null });
    expect(body.errors).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: "FORBIDDEN" }) }),
    ]);
    expect(body.errors?.[0]).not.toHaveProperty("path");
  });

  it("reports nothing for a withheld field that @include leaves out", async () => {
    const query = `query($withName: Boolean!) { person(id: "${ZHANG_WEI}") { alive name @include(if: $withName) } }`;
    const without = await platform.query(query, { withName: false }, LOTTERY_DESK);
    expect(without.body).toEqual({ data: { person: { alive: true } } });
    const withName = await platform.query(query, { withName: true }, LOTTERY_DESK);
    expect(withName.body.data).toEqual({ person: { alive: true, name: null } });
    expect(withName.body.errors?.[0]?.path).toEqual(["person", "name"]);
  });

  it("keeps the order of the fields as asked", async () => {
    const response = await fetch(platform.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...LOTTERY_DESK },
      body: JSON.stringify({
        query: `{ person(id: "${ZHANG_WEI}") { alive name ageOn(on: "2026-11-01") hukouAddress } }`,
      }),
    });
    const text = await response.text();
    expect(text).toContain('"person":{"alive":true,"name":null,"ageOn":41,"hukouAddress":null}');
  });
});

describe("a related person", () => {
  let own: ReturnType<typeof tempDataDir>;
  let housing: Platform;
  const HOUSING = { authorization: "Bearer housing-key", "x-purpose": "housing" };

  beforeAll(async () => {
    own = tempDataDir();
    writeFixtures(own.dir);
    const desksFile = join(own.dir, "desks.json");
    writeFileSync(
      desksFile,
      JSON.stringify({
        desks: [
          {
            id: "housing",
            name: "Housing desk (test)",
            keys: [`sha256:${hashKey("housing-key")}`],
            purposes: [
              {
                code: "housing",
                legalBasis: "Test suite.",
                scopes: [
                  "family:relations",
                  "identity:age",
                  "traffic:licenses",
                  "market:organization",
                  "market:legal-representative",
                ],
              },
            ],
          },
        ],
      }),
    );
    housing = await startPlatform(own.dir, { config: { security: { desksFile } } });
  });

  afterAll(async () => {
    await housing.close();
    own.remove();
  });

  it("shows only the region of the number to a desk without identity:basic; a named subject keeps its last four", async () => {
    const { body } = await housing.query(
      `{ person(id: "${ZHANG_WEI}") { id spouse(on: "2026-11-01") { id } } }`,
      {},
      HOUSING,
    );
    expect(body).toEqual({
      data: { person: { id: "110105********1015", spouse: { id: "110108************" } } },
    });
  });

  it("masks a driving licence's number as the identity number it is: in full it would undo the masks", async () => {
    const { body } = await housing.query(
      `{ person(id: "${ZHANG_WEI}") { id driverLicenses { number class } }
         organization(uscc: "${ZHANG_COMPANY}") { legalRepresentative { id driverLicenses { number } } } }`,
      {},
      HOUSING,
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      person: {
        id: "110105********1015",
        driverLicenses: [{ number: "110105********1015", class: "C1" }],
      },
      organization: {
        legalRepresentative: {
          id: "110105************",
          driverLicenses: [{ number: "110105************" }],
        },
      },
    });
  });

  it("has an age for today only: on days of the desk's choosing it would give away the birth date", async () => {
    // Ages on 7 and 8 July 1988 would tell that she was born on 8 July.
    type Ages = { person: { ageOn: number; spouse: Record<string, number | null> } };
    const { body } = await housing.query<Ages>(
      `{ person(id: "${ZHANG_WEI}") {
          ageOn(on: "2026-11-01")
          spouse(on: "2026-11-01") { now: ageOn before: ageOn(on: "1988-07-07") after: ageOn(on: "1988-07-08") }
        } }`,
      {},
      HOUSING,
    );
    const spouse = body.data?.person.spouse ?? {};
    expect(body.data?.person.ageOn).toBe(41); // the subject the desk named: any day
    expect(spouse.before).toBeNull();
    expect(spouse.after).toBeNull();
    const born = new Date("1987-07-08T00:00:00Z");
    const today = new Date();
    expect(spouse.now).toBeGreaterThanOrEqual(today.getUTCFullYear() - born.getUTCFullYear() - 1);
    expect(spouse.now).toBeLessThanOrEqual(today.getUTCFullYear() - born.getUTCFullYear());
    expect(body.errors?.map((error) => [error.path, error.extensions])).toEqual([
      [
        ["person", "spouse", "before"],
        // The scope that would lift the restriction: the desk holds identity:age already.
        { code: "FORBIDDEN", field: "Person.ageOn", requiredScopes: [["identity:basic"]] },
      ],
      [
        ["person", "spouse", "after"],
        { code: "FORBIDDEN", field: "Person.ageOn", requiredScopes: [["identity:basic"]] },
      ],
    ]);
    expect(body.errors?.[0]?.message).toContain("for today only");
  });

  it("cannot be asked a dated age through a fragment the named subject shares", async () => {
    const { body } = await housing.query(
      `query { person(id: "${ZHANG_WEI}") { ...Age spouse(on: "2026-11-01") { ...Age } } }
       fragment Age on Person { ageOn(on: "1988-07-07") }`,
      {},
      HOUSING,
    );
    // The fragment's one field is withheld wherever it is spread, rather than answered for one
    // person and not the other under the same text.
    expect(body.data).toEqual({ person: { ageOn: null, spouse: { ageOn: null } } });
    expect(body.errors?.map((error) => error.path)).toEqual([
      ["person", "ageOn"],
      ["person", "spouse", "ageOn"],
    ]);
    expect(body.errors?.[0]?.message).toContain("the same field is asked");
    expect(body.errors?.[1]?.message).toContain("of this person");

    // The fragment's field merged with one written out for the named person: withheld as one
    // field, not rewritten half-way into a conflict.
    const merged = await housing.query(
      `query { person(id: "${ZHANG_WEI}") { ...Age ageOn(on: "1988-07-07") spouse(on: "2026-11-01") { ...Age } } }
       fragment Age on Person { ageOn(on: "1988-07-07") }`,
      {},
      HOUSING,
    );
    expect(merged.body.data).toEqual({ person: { ageOn: null, spouse: { ageOn: null } } });
    expect(merged.body.errors?.map((error) => error.extensions?.code)).toEqual([
      "FORBIDDEN",
      "FORBIDDEN",
    ]);
  });
});
