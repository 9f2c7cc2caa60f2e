/**
 * The audit ledger through the real gateway: one entry per subject, durable before the response,
 * a hash chain that `npm run audit -- verify` checks, and a citizen's view of their own entries.
 */
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId } from "../../common/ids.ts";
import {
  auditDatabasePath,
  openAuditDatabase,
  recordAppender,
  subjectEntries,
  verifyChain,
} from "../../gateway/ledger/store.ts";
import type { WireRecord } from "../../gateway/ledger/wire.ts";
import { developmentCitizenToken } from "../../gateway/security/citizen-token.ts";
import { LI_NA, WANG_QIANG, writeFixtures, ZHANG_WEI, ZHANG_XIAOMING } from "../fixtures.ts";
import { audit, journalRecords, tempDataDir, writeRecords } from "../helpers.ts";
import { LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;

/** 990 registered persons and 10 numbers nobody holds. */
const REGISTERED = Array.from({ length: 990 }, (_, i) =>
  makePersonId(
    "110105",
    `1990-01-${String((i % 28) + 1).padStart(2, "0")}`,
    100 + Math.floor(i / 28),
  ),
);
const UNKNOWN = Array.from({ length: 10 }, (_, i) => makePersonId("110108", "2001-02-03", 500 + i));

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  writeRecords(
    "hukou",
    data.dir,
    REGISTERED.map((id, i) => ({
      kind: "person",
      id,
      name: `测试${i}`,
      gender: Number(id[16]) % 2 === 1 ? "M" : "F",
      birthDate: `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`,
      hukouRegion: "110105",
      status: "ALIVE",
    })),
  );
  platform = await startPlatform(data.dir);
});

afterAll(() => tearDown(platform, data.remove));

function withLedger<T>(dir: string, read: (sqlite: Database.Database) => T): T {
  const sqlite = openAuditDatabase(dir, { existing: true });
  try {
    return read(sqlite);
  } finally {
    sqlite.close();
  }
}

describe("a 1,000-id people query", () => {
  const ids = [...REGISTERED.slice(0, 500), ...UNKNOWN, ...REGISTERED.slice(500)];

  it("writes one entry per subject, durable before the response arrives", async () => {
    const { body } = await platform.query(
      `query LotteryBatch($ids: [ID!]!) { people(ids: $ids) { alive ageOn(on: "2026-11-01") } }`,
      { ids },
      { ...LOTTERY_DESK, "x-case-id": "2026-R5" },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data?.people).toHaveLength(1000);
    // Read the journal the moment the response is in: every subject is already on disk.
    const acknowledged = journalRecords(data.dir).filter(
      (record) => record.operationName === "LotteryBatch",
    );
    expect(acknowledged).toHaveLength(1);
    expect(acknowledged[0]?.subjects.split("\n")).toEqual(ids);
    // Then in audit.db, chained, once the writer has moved it.
    await platform.ledgerMoved();
    const rows = withLedger(data.dir, (sqlite) =>
      sqlite
        .prepare(
          `SELECT e.subject, e.outcome, e.selection, r.selections, r.desk_id, r.purpose, r.case_id, r.departments
           FROM entries e JOIN request_details r ON r.seq = e.request WHERE r.operation_name = 'LotteryBatch'
           ORDER BY e.seq`,
        )
        .all(),
    ) as Array<Record<string, string>>;
    expect(rows).toHaveLength(1000);
    expect(rows.map((row) => row.subject)).toEqual(ids);
    expect(rows[0]).toEqual({
      subject: ids[0],
      outcome: "answered",
      selection: 0,
      selections: '[{"fields":["Person.alive","Person.ageOn"],"denied":[]}]',
      desk_id: "dev-lottery",
      purpose: "car-lottery",
      case_id: "2026-R5",
      departments: '["hukou"]',
    });
    // Numbers nobody holds are recorded too: the desk learned that nobody holds them.
    expect(rows.slice(500, 510).every((row) => row.outcome === "not-found")).toBe(true);
  });

  it("keeps every acknowledged entry when many requests commit together", async () => {
    await platform.ledgerMoved();
    const before = withLedger(data.dir, (sqlite) => verifyChain(sqlite));
    await Promise.all(
      REGISTERED.slice(0, 40).map((id) =>
        platform.query(`query One { person(id: "${id}") { alive } }`, {}, LOTTERY_DESK),
      ),
    );
    await platform.ledgerMoved();
    const after = withLedger(data.dir, (sqlite) => verifyChain(sqlite));
    expect(after.ok).toBe(true);
    expect(after.entries - before.entries).toBe(40);
  });
});

describe("subjects named in an argument below the root", () => {
  it("records the parent asked about by isChildOf(parentId:), as well as the child", async () => {
    const { body } = await platform.query(
      `query ParentCheck { person(id: "${ZHANG_XIAOMING}") { isChildOf(parentId: "${ZHANG_WEI}") } }`,
    );
    expect(body).toEqual({ data: { person: { isChildOf: true } } });
    await platform.ledgerMoved();
    const entries = (subject: string) =>
      withLedger(data.dir, (sqlite) => subjectEntries(sqlite, subject)).filter(
        (entry) => entry.operationName === "ParentCheck",
      );
    expect(entries(ZHANG_XIAOMING).map((entry) => entry.fields)).toEqual([["Person.isChildOf"]]);
    expect(entries(ZHANG_WEI).map((entry) => [entry.fields, entry.outcome])).toEqual([
      [["Person.isChildOf"], "answered"],
    ]);
  });

  it("records the parent also when an error elsewhere nulled the child", async () => {
    const { body } = await platform.query(
      `query NulledChild { person(id: "${ZHANG_XIAOMING}") { isChildOf(parentId: "${ZHANG_WEI}") ownsVehicle(region: "11") } }`,
    );
    expect(body.data).toEqual({ person: null });
    await platform.ledgerMoved();
    const outcomes = withLedger(data.dir, (sqlite) => subjectEntries(sqlite, ZHANG_WEI))
      .filter((entry) => entry.operationName === "NulledChild")
      .map((entry) => [entry.fields, entry.outcome]);
    expect(outcomes).toEqual([[["Person.isChildOf"], "failed"]]);
  });
});

describe("subjects a request did not ask about after all", () => {
  const entriesOf = (subject: string, operationName: string) =>
    withLedger(data.dir, (sqlite) => subjectEntries(sqlite, subject))
      .filter((entry) => entry.operationName === operationName)
      .map((entry) => [entry.fields, entry.outcome]);

  it("records nobody for a root field left out by @skip or @include", async () => {
    const { body } = await platform.query(
      `query SkippedRoot($withSpouse: Boolean!) {
         person(id: "${ZHANG_WEI}") { alive }
         wife: person(id: "${LI_NA}") @include(if: $withSpouse) { alive }
         again: people(ids: ["${LI_NA}"]) @skip(if: true) { alive } }`,
      { withSpouse: false },
    );
    expect(body).toEqual({ data: { person: { alive: true } } });
    await platform.ledgerMoved();
    expect(entriesOf(ZHANG_WEI, "SkippedRoot")).toEqual([[["Person.alive"], "answered"]]);
    expect(entriesOf(LI_NA, "SkippedRoot")).toEqual([]);
  });

  it("keeps the other subjects' outcomes when a withheld field had no object to hold it", async () => {
    // The lottery desk may not read names: for a number nobody holds, the FORBIDDEN error has no
    // path (no object holds the field); it took nothing from Zhang Wei's answer.
    const { body } = await platform.query(
      `query WithheldNowhere { person(id: "${ZHANG_WEI}") { alive } nobody: person(id: "${UNKNOWN[0]}") { name } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body.data).toEqual({ person: { alive: true }, nobody: null });
    expect(body.errors?.map((error) => [error.extensions?.code, error.path])).toEqual([
      ["FORBIDDEN", undefined],
    ]);
    await platform.ledgerMoved();
    expect(entriesOf(ZHANG_WEI, "WithheldNowhere")).toEqual([[["Person.alive"], "answered"]]);
    expect(entriesOf(UNKNOWN[0] as string, "WithheldNowhere")).toEqual([[[], "not-found"]]);
  });

  it("reports no withheld field under a parent @skip left out", async () => {
    const { body } = await platform.query(
      `query WithheldSkipped { person(id: "${ZHANG_WEI}") { alive } hidden: person(id: "${LI_NA}") @skip(if: true) { name } }`,
      {},
      LOTTERY_DESK,
    );
    expect(body).toEqual({ data: { person: { alive: true } } });
  });
});

describe("a nested subject whose object an error nulled", () => {
  it("is recorded (failed): the register was asked about her, though the desk got nothing", async () => {
    const { body } = await platform.query(
      `query NulledSpouse { person(id: "${ZHANG_WEI}") { name spouse { hukouWithin(region: "11") } } }`,
    );
    expect(body.data).toEqual({ person: { name: "张伟", spouse: null } });
    expect(body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    await platform.ledgerMoved();
    const entries = (subject: string) =>
      withLedger(data.dir, (sqlite) => subjectEntries(sqlite, subject))
        .filter((entry) => entry.operationName === "NulledSpouse")
        .map((entry) => [entry.fields, entry.outcome]);
    expect(entries(LI_NA)).toEqual([[["Person.hukouWithin"], "failed"]]);
    expect(entries(ZHANG_WEI)).toEqual([[["Person.name", "Person.spouse"], "partial"]]);
  });
});

describe("npm run audit", () => {
  it("prints a subject's entries as NDJSON", async () => {
    const subject = REGISTERED[3] as string;
    const { code, stdout } = await audit(data.dir, "subject", subject);
    expect(code).toBe(0);
    const lines = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatchObject({
      subject,
      deskId: "dev-lottery",
      desk: "Beijing passenger-car lottery desk (development)",
      purpose: "car-lottery",
      caseId: "2026-R5",
      operationName: "LotteryBatch",
      fields: ["Person.alive", "Person.ageOn"],
      denied: [],
      departments: ["hukou"],
      outcome: "answered",
    });
    expect(lines[0].hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("verifies the chain (exit 0), and fails naming the entry after a row is edited or deleted", async () => {
    expect((await audit(data.dir, "verify")).code).toBe(0);
    expect((await audit(data.dir, "verify")).stdout).toMatch(/chain intact: \d+ entries/);

    // Tamper with a consistent copy, as someone with the file would.
    const copy = tempDataDir();
    try {
      withLedger(data.dir, (sqlite) => sqlite.exec(`VACUUM INTO '${copy.dir}/audit.db'`));
      const file = new Database(`${copy.dir}/audit.db`);
      // The platform itself cannot rewrite history…
      expect(() =>
        file.prepare("UPDATE entries SET outcome = 'answered' WHERE seq = 700").run(),
      ).toThrow(/append-only/);
      // …someone editing the file around the triggers is caught by the chain.
      file.exec("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete");
      file.prepare("UPDATE entries SET subject = ? WHERE seq = 700").run(ZHANG_WEI);
      file.close();
      const edited = await audit(copy.dir, "verify");
      expect(edited.code).toBe(1);
      expect(edited.stderr).toContain("BROKEN at entry 700");
      expect(edited.stderr).toContain("was edited");

      const restored = new Database(`${copy.dir}/audit.db`);
      const original = withLedger(data.dir, (sqlite) =>
        sqlite.prepare("SELECT subject FROM entries WHERE seq = 700").get(),
      ) as { subject: string };
      restored.prepare("UPDATE entries SET subject = ? WHERE seq = 700").run(original.subject);
      expect(verifyChain(restored).ok).toBe(true);
      restored.prepare("DELETE FROM entries WHERE seq = 321").run();
      restored.close();
      const deleted = await audit(copy.dir, "verify");
      expect(deleted.code).toBe(1);
      expect(deleted.stderr).toContain("BROKEN at entry 322");

      const truncated = new Database(`${copy.dir}/audit.db`);
      truncated.prepare("INSERT INTO entries SELECT * FROM entries WHERE 0").run();
      const last = truncated.prepare("SELECT max(seq) AS seq FROM entries").get() as {
        seq: number;
      };
      truncated.prepare("DELETE FROM entries WHERE seq >= 321").run();
      truncated.close();
      const tail = await audit(copy.dir, "verify");
      expect(tail.code).toBe(1);
      expect(tail.stderr).toContain(`head records entry ${last.seq}`);
      // Nor does the ledger write over the gap: chained after what is left, the next entries
      // would make the chain verify again.
      const reopened = new Database(`${copy.dir}/audit.db`);
      try {
        expect(() => recordAppender(reopened)([accessOf(WANG_QIANG)])).toThrow(
          `audit.db's entries end at 320 but its head is entry ${last.seq}`,
        );
      } finally {
        reopened.close();
      }
      // Nor when the head rows go too: every append writes them, so their absence is evidence.
      const headless = new Database(`${copy.dir}/audit.db`);
      headless.prepare("DELETE FROM ledger_state WHERE name IN ('head_seq', 'head_hash')").run();
      headless.close();
      const noHead = await audit(copy.dir, "verify");
      expect(noHead.code).toBe(1);
      expect(noHead.stderr).toContain("ends at entry 320 but records no head");
      const again = new Database(`${copy.dir}/audit.db`);
      try {
        expect(() => recordAppender(again)([accessOf(WANG_QIANG)])).toThrow(
          "audit.db's entries end at 320 but its head is missing",
        );
      } finally {
        again.close();
      }
    } finally {
      copy.remove();
    }
  });

  it("checks a head published earlier (--expect), which a ledger cut back and rebuilt fails", async () => {
    const printed = (await audit(data.dir, "head")).stdout;
    const head = JSON.parse(printed) as { seq: number; hash: string };
    const intact = await audit(data.dir, "verify", "--expect", `${head.seq}:${head.hash}`);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain(`entry ${head.seq} has the published hash`);
    // What head printed, pasted as it is, is the same head.
    const pasted = await audit(data.dir, "verify", "--expect", printed);
    expect(pasted.code, pasted.stderr).toBe(0);
    expect(pasted.stdout).toContain(`entry ${head.seq} has the published hash`);

    const copy = tempDataDir();
    try {
      withLedger(data.dir, (sqlite) => sqlite.exec(`VACUUM INTO '${copy.dir}/audit.db'`));
      const file = new Database(`${copy.dir}/audit.db`);
      // Cut back to entry 10 and the head rows rewritten to match: the chain itself verifies.
      file.exec("DROP TRIGGER entries_no_delete");
      file.prepare("DELETE FROM entries WHERE seq > 10").run();
      const last = file.prepare("SELECT hash FROM entries WHERE seq = 10").pluck().get() as string;
      file.prepare("UPDATE ledger_state SET value = '10' WHERE name = 'head_seq'").run();
      file.prepare("UPDATE ledger_state SET value = ? WHERE name = 'head_hash'").run(last);
      file.close();
      expect((await audit(copy.dir, "verify")).code).toBe(0);
      const cut = await audit(copy.dir, "verify", "--expect", `${head.seq}:${head.hash}`);
      expect(cut.code).toBe(1);
      expect(cut.stderr).toContain(`the published entry ${head.seq} is not in the ledger`);
      expect((await audit(copy.dir, "verify", "--expect", "12")).code).toBe(2);
    } finally {
      copy.remove();
    }
  });

  it("exits non-zero with usage for an unknown command or subject", async () => {
    expect((await audit(data.dir, "frobnicate")).code).toBe(2);
    expect((await audit(data.dir, "subject", "12345")).code).toBe(2);
  });
});

/** A record of one access by the lottery desk, as the journal hands it to audit.db. */
function accessOf(subject: string): WireRecord {
  return {
    at: new Date().toISOString(),
    requestId: "test-request",
    deskId: "dev-lottery",
    deskName: "Lottery",
    purpose: "car-lottery",
    legalBasis: "Test suite.",
    caseId: null,
    operationName: null,
    operationHash: "0".repeat(64),
    departments: ["hukou"],
    selections: [{ fields: ["Person.alive"], denied: [] }],
    subjects: subject,
    picks: Uint16Array.of(0),
    outcomes: "a",
  };
}

describe("myAccessLog", () => {
  it("shows a citizen who looked at their records, and nobody else's accesses", async () => {
    await platform.query(
      `query HousingCheck { person(id: "${ZHANG_WEI}") { hukouRegion { code } } }`,
      {},
      { authorization: "Bearer dev-desk-key", "x-purpose": "demo", "x-case-id": "FW-2026-001" },
    );
    await platform.query(
      `query LotteryPair { people(ids: ["${ZHANG_WEI}", "${LI_NA}"]) { hasValidDriverLicense name } }`,
      {},
      LOTTERY_DESK,
    );
    await platform.query(`query OnlyLiNa { person(id: "${LI_NA}") { alive } }`, {}, LOTTERY_DESK);

    const read = async (id: string) => {
      const token = await developmentCitizenToken(id);
      const { body } = await platform.query(
        `{ myAccessLog { entry at deskId desk purpose legalBasis caseId facts denied departments outcome operationName } }`,
        {},
        { authorization: `Bearer ${token}` },
      );
      expect(body.errors).toBeUndefined();
      return (body.data as { myAccessLog: Array<Record<string, unknown>> }).myAccessLog;
    };

    const zhang = await read(ZHANG_WEI);
    expect(zhang.map((entry) => entry.operationName).slice(0, 2)).toEqual([
      "LotteryPair",
      "HousingCheck",
    ]);
    expect(zhang[0]).toMatchObject({
      deskId: "dev-lottery",
      desk: "Beijing passenger-car lottery desk (development)",
      purpose: "car-lottery",
      legalBasis: expect.stringContaining("北京市小客车数量调控暂行规定"),
      caseId: null,
      facts: ["Person.hasValidDriverLicense"],
      denied: ["Person.name"],
      departments: ["hukou", "traffic"],
      outcome: "PARTIAL",
    });
    expect(zhang[1]).toMatchObject({
      deskId: "dev-desk",
      purpose: "demo",
      caseId: "FW-2026-001",
      facts: ["Person.hukouRegion", "Region.code"],
      outcome: "ANSWERED",
    });
    expect(zhang.some((entry) => entry.operationName === "OnlyLiNa")).toBe(false);
    // Exactly the ledger's entries for this citizen, nobody else's.
    const ledger = withLedger(data.dir, (sqlite) => subjectEntries(sqlite, ZHANG_WEI));
    expect(zhang.map((entry) => entry.entry)).toEqual(ledger.map((entry) => entry.entry));

    const li = await read(LI_NA);
    expect(li.map((entry) => entry.operationName).slice(0, 2)).toEqual(["OnlyLiNa", "LotteryPair"]);
    expect(li.some((entry) => entry.operationName === "HousingCheck")).toBe(false);

    const wang = await read(WANG_QIANG);
    expect(wang).toEqual([]);
  });

  it("says the log cannot be read, with a code, rather than leave out an access audit.db cannot take yet", async () => {
    // Another process holds audit.db's write lock past its busy timeout: a desk's access is
    // acknowledged (durable in the journal) but cannot be moved, so the citizen's read fails.
    const holder = new Database(auditDatabasePath(data.dir));
    holder.exec("BEGIN IMMEDIATE");
    try {
      const asked = await platform.query(
        `{ person(id: "${ZHANG_WEI}") { alive } }`,
        {},
        LOTTERY_DESK,
      );
      expect(asked.body.errors).toBeUndefined();
      const token = await developmentCitizenToken(ZHANG_WEI);
      const { body } = await platform.query(
        "{ myAccessLog { at } }",
        {},
        { authorization: `Bearer ${token}` },
      );
      expect(body.errors).toEqual([
        expect.objectContaining({
          message: expect.stringContaining("cannot be read right now"),
          extensions: expect.objectContaining({ code: "AUDIT_UNAVAILABLE" }),
        }),
      ]);
    } finally {
      holder.exec("COMMIT");
      holder.close();
    }
    // Released: the read moves the acknowledged access first and shows it.
    const token = await developmentCitizenToken(ZHANG_WEI);
    const { body } = await platform.query(
      "{ myAccessLog(limit: 1) { deskId facts } }",
      {},
      { authorization: `Bearer ${token}` },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      myAccessLog: [{ deskId: "dev-lottery", facts: ["Person.alive"] }],
    });
  });

  it("reads a long log page by page (before: the last entry read), the whole of it", async () => {
    for (let i = 0; i < 3; i++) {
      await platform.query(`{ person(id: "${WANG_QIANG}") { alive } }`, {}, LOTTERY_DESK);
    }
    const token = await developmentCitizenToken(WANG_QIANG);
    const page = async (extra: string) => {
      const { body } = await platform.query(
        `{ myAccessLog(limit: 2${extra}) { entry } }`,
        {},
        { authorization: `Bearer ${token}` },
      );
      return body;
    };
    const first = (await page("")).data as { myAccessLog: Array<{ entry: number }> };
    expect(first.myAccessLog).toHaveLength(2);
    const last = first.myAccessLog[1]?.entry as number;
    const second = (await page(`, before: ${last}`)).data as {
      myAccessLog: Array<{ entry: number }>;
    };
    const all = withLedger(data.dir, (sqlite) => subjectEntries(sqlite, WANG_QIANG));
    expect([...first.myAccessLog, ...second.myAccessLog].map((entry) => entry.entry)).toEqual(
      all.map((entry) => entry.entry),
    );
    expect((await page(", before: 0")).errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("shows an entry only to its own subject, even if the subject index says otherwise", () => {
    const copy = tempDataDir();
    try {
      withLedger(data.dir, (sqlite) => sqlite.exec(`VACUUM INTO '${copy.dir}/audit.db'`));
      const file = new Database(`${copy.dir}/audit.db`);
      try {
        const theirs = subjectEntries(file, LI_NA)[0]?.entry as number;
        file
          .prepare("INSERT INTO subject_index (subject, entry) VALUES (?, ?)")
          .run(WANG_QIANG, theirs);
        file
          .prepare("INSERT OR REPLACE INTO ledger_state (name, value) VALUES ('indexed_upto', ?)")
          .run(String(theirs));
        expect(subjectEntries(file, WANG_QIANG).map((entry) => entry.entry)).not.toContain(theirs);
      } finally {
        file.close();
      }
    } finally {
      copy.remove();
    }
  });

  it("has one entry per person a verification names, however often it names them", async () => {
    await platform.ledgerMoved();
    const before = withLedger(data.dir, (sqlite) => subjectEntries(sqlite, ZHANG_XIAOMING)).length;
    const { body } = await platform.query(
      `query ($s: [ID!]!) { verify(policy: "beijing-car-lottery/individual", subjects: $s, on: "2026-11-01") { outcome } }`,
      { s: [ZHANG_XIAOMING, ZHANG_XIAOMING, ZHANG_XIAOMING] },
      LOTTERY_DESK,
    );
    expect((body.data as { verify: unknown[] }).verify).toHaveLength(3);
    await platform.ledgerMoved();
    const after = withLedger(data.dir, (sqlite) => subjectEntries(sqlite, ZHANG_XIAOMING)).length;
    expect(after - before).toBe(1);
  });

  it("is read once per request: aliases would multiply the reads of the log", async () => {
    const token = await developmentCitizenToken(ZHANG_WEI);
    const { body } = await platform.query(
      "{ a: myAccessLog { at } b: myAccessLog { at } }",
      {},
      { authorization: `Bearer ${token}` },
    );
    expect(body.data).toBeUndefined();
    expect(body.errors?.[0]?.extensions).toEqual({
      code: "LIMIT_EXCEEDED",
      limit: "myAccessLog",
      max: 1,
    });
  });

  it("is not itself recorded as an access to the registers", async () => {
    // An access reaches the journal first and audit.db once the writer has moved it: both are
    // counted, after a move, so that a recorded read could not hide in the journal.
    await platform.ledgerMoved();
    const journalBefore = journalRecords(data.dir).length;
    const before = withLedger(data.dir, (sqlite) => verifyChain(sqlite));
    const token = await developmentCitizenToken(ZHANG_WEI);
    const { body } = await platform.query(
      "{ myAccessLog { at } }",
      {},
      { authorization: `Bearer ${token}` },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data?.myAccessLog).not.toHaveLength(0);
    await platform.ledgerMoved();
    expect(journalRecords(data.dir)).toHaveLength(journalBefore);
    const after = withLedger(data.dir, (sqlite) => verifyChain(sqlite));
    expect(after.entries).toBe(before.entries);
  });
});
