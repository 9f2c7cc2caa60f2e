/**
 * Ledger format 2 stores a request's context (desk, purpose, plan, departments, selections) once
 * in `contexts`. A format-1 file — the context in every request row, as the gateway wrote until
 * 2026-12-05 — is migrated when opened, without changing a hash of its chain: it verifies with
 * the same head, answers a subject as before, and a row edited before the migration is still
 * caught after it. An edited context breaks the chain at the first entry whose request uses it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLedger } from "../../gateway/ledger/ledger.ts";
import {
  auditDatabasePath,
  entryHash,
  GENESIS_HASH,
  type Migration,
  openAuditDatabase,
  type RequestRow,
  requestHash,
  subjectEntries,
  verifyChain,
} from "../../gateway/ledger/store.ts";
import { OPEN_PRINCIPAL, type Principal } from "../../gateway/principal.ts";
import { tempDataDir } from "../helpers.ts";

/** The tables of format 1, as its gateway created them (its triggers left out: files get edited). */
const FORMAT_1 = `
CREATE TABLE requests (
  seq INTEGER PRIMARY KEY, at TEXT NOT NULL, request_id TEXT NOT NULL, desk_id TEXT,
  desk_name TEXT, purpose TEXT, legal_basis TEXT, case_id TEXT, operation_name TEXT,
  operation_hash TEXT NOT NULL, departments TEXT NOT NULL, selections TEXT NOT NULL,
  hash TEXT NOT NULL);
CREATE TABLE entries (
  seq INTEGER PRIMARY KEY, request INTEGER NOT NULL, subject TEXT NOT NULL,
  selection INTEGER NOT NULL, outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE subject_index (subject TEXT NOT NULL, entry INTEGER NOT NULL,
  PRIMARY KEY (subject, entry)) WITHOUT ROWID;
CREATE TABLE ledger_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 1;`;

const LOTTERY = {
  desk_id: "dev-lottery",
  desk_name: "小客车指标调控管理办公室",
  purpose: "car-quota-lottery",
  legal_basis: "北京市小客车数量调控暂行规定 第十条",
  operation_name: "LotteryFacts",
  operation_hash: "ab".repeat(32),
  departments: JSON.stringify(["hukou", "social", "tax"]),
  selections: JSON.stringify([
    { fields: ["Person.hukouRegion", "Person.socialInsuranceMonths"], denied: ["Person.name"] },
    { fields: ["Person.hukouRegion"], denied: [] },
  ]),
};
const HOSPITAL = {
  ...LOTTERY,
  desk_id: "dev-hospital",
  desk_name: "Hospital desk",
  purpose: "admission",
  legal_basis: null,
  departments: JSON.stringify(["civil"]),
  selections: JSON.stringify([{ fields: ["Person.maritalStatus"], denied: [] }]),
};
const A = "11010519491231002X";
const B = "110105194912310038";

/** Requests of two contexts, interleaved, chained as format 1 chained them. */
function writeFormat1(
  dir: string,
  edit?: (file: Database.Database) => void,
): { seq: number; hash: string } {
  const file = new Database(auditDatabasePath(dir));
  file.exec(FORMAT_1);
  const insertRequest = file.prepare(
    "INSERT INTO requests VALUES (:seq, :at, :request_id, :desk_id, :desk_name, :purpose, :legal_basis, :case_id, :operation_name, :operation_hash, :departments, :selections, :hash)",
  );
  const insertEntry = file.prepare("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)");
  const contexts = [LOTTERY, HOSPITAL, LOTTERY, LOTTERY, HOSPITAL];
  let prev = GENESIS_HASH;
  let seq = 0;
  contexts.forEach((context, index) => {
    const row: RequestRow = {
      seq: index + 1,
      at: `2026-12-0${index + 1}T08:00:00.000Z`,
      request_id: `r${index + 1}`,
      case_id: index === 2 ? "case-3" : null,
      ...context,
    };
    const ofRequest = requestHash(row);
    insertRequest.run({ ...row, hash: ofRequest });
    for (const [subject, selection] of [
      [A, 0],
      [B, context === LOTTERY ? 1 : 0],
    ] as const) {
      seq++;
      const entry = { seq, request: row.seq, subject, selection, outcome: "answered" };
      const hash = entryHash(prev, entry, ofRequest);
      insertEntry.run(seq, row.seq, subject, selection, entry.outcome, prev, hash);
      prev = hash;
    }
  });
  file
    .prepare("INSERT INTO ledger_state VALUES ('head_seq', ?), ('head_hash', ?)")
    .run(String(seq), prev);
  edit?.(file);
  file.close();
  return { seq, hash: prev };
}

const removals: Array<() => void> = [];
function dataDir(): string {
  const data = tempDataDir();
  removals.push(data.remove);
  return data.dir;
}
afterEach(() => {
  for (const remove of removals.splice(0)) remove();
});

describe("ledger format 2", () => {
  it("migrates a format-1 ledger with every hash unchanged: same head, same answers", () => {
    const dir = dataDir();
    const head = writeFormat1(dir);
    const before = new Database(auditDatabasePath(dir));
    // What a format-1 reader answered for a subject: its requests' columns, newest first.
    const expected = before
      .prepare(
        "SELECT r.request_id, r.desk_id, r.purpose, r.legal_basis, r.case_id, r.departments FROM entries e JOIN requests r ON r.seq = e.request WHERE e.subject = ? ORDER BY e.seq DESC",
      )
      .all(B) as Array<Record<string, string | null>>;
    before.close();

    let report: Migration | null = null;
    const sqlite = openAuditDatabase(dir, { existing: true, migrated: (done) => (report = done) });
    try {
      expect(report).toEqual({ requests: 5, contexts: 2 });
      expect(sqlite.pragma("user_version", { simple: true })).toBe(2);
      expect(verifyChain(sqlite)).toEqual({ ok: true, entries: 10, head });
      const entries = subjectEntries(sqlite, B);
      expect(
        entries.map((entry) => ({
          request_id: entry.requestId,
          desk_id: entry.deskId,
          purpose: entry.purpose,
          legal_basis: entry.legalBasis,
          case_id: entry.caseId,
          departments: JSON.stringify(entry.departments),
        })),
      ).toEqual(expected);
      // Each request's selection, read through its context: B was picked the second selection of
      // the lottery's plan.
      expect(entries.at(-1)).toMatchObject({ fields: ["Person.hukouRegion"], denied: [] });
      expect(entries.at(-2)).toMatchObject({ fields: ["Person.maritalStatus"] });
      // The migrated tables are append-only like the rest.
      expect(() => sqlite.prepare("DELETE FROM contexts").run()).toThrow(/append-only/);
      expect(() => sqlite.prepare("UPDATE requests SET context = 1").run()).toThrow(/append-only/);
    } finally {
      sqlite.close();
    }
  });

  it("is migrated by npm run audit too, which says so and verifies the same head", async () => {
    const dir = dataDir();
    const head = writeFormat1(dir);
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      "--import",
      "tsx",
      "scripts/audit.ts",
      "verify",
      "--data-dir",
      dir,
    ]);
    expect(stderr).toContain(
      "migrated audit.db from format 1 to 2: 5 requests, 2 contexts stored once; every hash unchanged",
    );
    expect(stdout).toContain(`chain intact: 10 entries, head entry 10 ${head.hash}`);
  });

  it("still catches, after the migration, a request edited before it", () => {
    const dir = dataDir();
    writeFormat1(dir, (file) =>
      file.prepare("UPDATE requests SET purpose = 'marketing' WHERE seq = 3").run(),
    );
    const sqlite = openAuditDatabase(dir, { existing: true });
    try {
      // Request 3 got a context of its own (its edited purpose), whose columns no longer hash
      // to what the request's hash covered: the chain breaks at its first entry, entry 5.
      expect(sqlite.prepare("SELECT count(*) FROM contexts").pluck().get()).toBe(3);
      expect(verifyChain(sqlite)).toMatchObject({
        ok: false,
        entries: 4,
        brokenAt: 5,
        reason: expect.stringContaining("request 3 was edited"),
      });
    } finally {
      sqlite.close();
    }
  });

  it("goes on chaining after a migrated head, storing each context once", async () => {
    const dir = dataDir();
    writeFormat1(dir);
    const desk: Principal = {
      ...OPEN_PRINCIPAL,
      kind: "desk",
      deskId: "dev-hospital",
      deskName: "Hospital desk",
      purpose: "admission",
      legalBasis: null,
    };
    const ledger = await AuditLedger.open(dir, "full");
    // The gateway's writer migrated the file, and says so.
    expect(ledger.recovered.migrated).toEqual({ requests: 5, contexts: 2 });
    try {
      for (let index = 0; index < 20; index++) {
        await ledger.append({
          principal: desk,
          requestId: `new-${index}`,
          operationName: "Admission",
          operationHash: "cd".repeat(32),
          departments: ["civil"],
          subjects: [
            { subject: A, fields: ["Person.maritalStatus"], denied: [], outcome: "answered" },
          ],
        });
      }
      await ledger.moved();
    } finally {
      await ledger.close();
    }
    const sqlite = openAuditDatabase(dir, { existing: true });
    try {
      expect(verifyChain(sqlite)).toMatchObject({ ok: true, entries: 30 });
      // The two migrated contexts and the new requests' one.
      expect(sqlite.prepare("SELECT count(*) FROM contexts").pluck().get()).toBe(3);
      expect(subjectEntries(sqlite, A, 1)[0]).toMatchObject({
        requestId: "new-19",
        operationName: "Admission",
        fields: ["Person.maritalStatus"],
      });
    } finally {
      sqlite.close();
    }
  });

  it("breaks the chain at the first entry whose request uses an edited context", () => {
    const dir = dataDir();
    writeFormat1(dir);
    openAuditDatabase(dir, { existing: true }).close(); // migrated
    const file = new Database(auditDatabasePath(dir));
    file.exec("DROP TRIGGER contexts_no_update");
    // The hospital's context (the second, first used by request 2: entries 3 and 4).
    file.prepare("UPDATE contexts SET purpose = 'research' WHERE desk_id = 'dev-hospital'").run();
    file.close();
    const sqlite = openAuditDatabase(dir, { existing: true });
    try {
      expect(verifyChain(sqlite)).toMatchObject({
        ok: false,
        entries: 2,
        brokenAt: 3,
        reason: expect.stringContaining("its context 2 was edited"),
      });
    } finally {
      sqlite.close();
    }
  });
});
