/**
 * The ledger file on its own: appends from many callers form one chain, the subject index built in
 * bulk answers exactly what the unindexed tail answered, a locked file does not hold up
 * acknowledgements, and a ledger of another format is refused rather than extended.
 */
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLedger, LedgerUnavailable, type SubjectAccess } from "../../gateway/ledger/ledger.ts";
import {
  auditDatabasePath,
  indexSubjects,
  openAuditDatabase,
  subjectEntries,
  verifyChain,
} from "../../gateway/ledger/store.ts";
import { OPEN_PRINCIPAL, type Principal } from "../../gateway/principal.ts";
import { tempDataDir } from "../helpers.ts";

let data: ReturnType<typeof tempDataDir>;
let ledger: AuditLedger;
const desk: Principal = {
  ...OPEN_PRINCIPAL,
  kind: "desk",
  deskId: "d1",
  deskName: "Desk one",
  purpose: "p",
  legalBasis: "basis",
  scopes: new Set(["hukou:region"]),
};
const FIELDS = ["Person.hukouRegion"];

function accesses(
  subjects: string[],
  outcome: SubjectAccess["outcome"] = "answered",
): SubjectAccess[] {
  return subjects.map((subject) => ({ subject, fields: FIELDS, denied: [], outcome }));
}

beforeAll(async () => {
  data = tempDataDir();
  ledger = await AuditLedger.open(data.dir, "full");
});

afterAll(async () => {
  await ledger.close();
  data.remove();
});

describe("the ledger file", () => {
  it("chains concurrent appends and answers a subject from the tail and from the index alike", async () => {
    // 150 requests of two subjects: more rows than one INSERT statement takes, for both tables.
    const subjects = Array.from(
      { length: 150 },
      (_, i) => `110105199001010${String(i).padStart(3, "0")}`,
    );
    const shared = "11010519850312101X";
    await Promise.all(
      subjects.map((subject, i) =>
        ledger.append({
          principal: { ...desk, caseId: `case-${i}` },
          requestId: `r${i}`,
          operationName: "One",
          operationHash: "0".repeat(64),
          departments: ["hukou"],
          subjects: accesses([subject, shared], i % 2 ? "partial" : "answered"),
        }),
      ),
    );
    const fromTail = await ledger.entriesFor(shared);
    expect(fromTail).toHaveLength(150);
    expect(fromTail[0]).toMatchObject({
      deskId: "d1",
      desk: "Desk one",
      fields: FIELDS,
      denied: [],
    });

    const sqlite = openAuditDatabase(data.dir, { existing: true });
    try {
      expect(verifyChain(sqlite)).toMatchObject({ ok: true, entries: 300 });
      // One desk, purpose and plan: 150 requests (each its own case), one context row.
      expect(sqlite.prepare("SELECT count(*) FROM requests").pluck().get()).toBe(150);
      expect(sqlite.prepare("SELECT count(*) FROM contexts").pluck().get()).toBe(1);
      expect(indexSubjects(sqlite, 1_000_000)).toBe(300);
      expect(subjectEntries(sqlite, shared)).toEqual(fromTail);
      expect(subjectEntries(sqlite, subjects[7] as string)).toEqual([
        expect.objectContaining({ caseId: "case-7", outcome: "partial" }),
      ]);
    } finally {
      sqlite.close();
    }
    // Entries written after the index are found in the tail, next to the indexed ones.
    await ledger.append({
      principal: desk,
      requestId: "late",
      operationName: "Late",
      operationHash: "0".repeat(64),
      departments: [],
      subjects: accesses([shared]),
    });
    const both = await ledger.entriesFor(shared);
    expect(both).toHaveLength(151);
    expect(both[0]?.operationName).toBe("Late");
  });

  it("records each request's own departments, subject, outcome and time, however its accesses arrive", async () => {
    // Consecutive records reuse what they share (the departments' sorted list, the time of one
    // millisecond, a one-subject record's compact form): each must still carry its own.
    const cases: Array<{ departments: Iterable<string>; subjects: string[]; at?: Date }> = [
      { departments: new Set(["tax", "hukou"]), subjects: ["110105199203030011"] },
      { departments: new Set(["hukou", "tax"]), subjects: ["110105199203030012"] },
      { departments: new Set(["hukou", "civil"]), subjects: ["110105199203030013"] },
      { departments: new Set(["hukou"]), subjects: ["110105199203030014"] },
      { departments: ["tax", "hukou"], subjects: ["110105199203030015", "110105199203030016"] },
      {
        departments: new Set(["tax", "hukou"]),
        subjects: ["110105199203030017"],
        at: new Date("2026-01-02T03:04:05.006Z"),
      },
    ];
    const before = new Date().toISOString();
    await Promise.all(
      cases.map(({ departments, subjects, at }, i) =>
        ledger.append({
          principal: desk,
          requestId: `own-${i}`,
          operationName: "Own",
          operationHash: "0".repeat(64),
          departments,
          subjects: accesses(subjects, i === 2 ? "not-found" : "answered"),
          at,
        }),
      ),
    );
    const after = new Date().toISOString();
    const entryOf = async (subject: string) => (await ledger.entriesFor(subject))[0];
    const expected = [
      ["110105199203030011", ["hukou", "tax"], "answered"],
      ["110105199203030012", ["hukou", "tax"], "answered"],
      ["110105199203030013", ["civil", "hukou"], "not-found"],
      ["110105199203030014", ["hukou"], "answered"],
      ["110105199203030015", ["hukou", "tax"], "answered"],
      ["110105199203030016", ["hukou", "tax"], "answered"],
      ["110105199203030017", ["hukou", "tax"], "answered"],
    ] as const;
    for (const [subject, departments, outcome] of expected) {
      expect(await entryOf(subject)).toMatchObject({
        subject,
        departments: [...departments],
        outcome,
        fields: FIELDS,
      });
    }
    const at = (await entryOf("110105199203030011"))?.at ?? "";
    expect(at >= before && at <= after).toBe(true);
    expect((await entryOf("110105199203030017"))?.at).toBe("2026-01-02T03:04:05.006Z");
  });

  it("acknowledges while another connection holds audit.db's write lock, and chains everything once it is released", async () => {
    const record = (requestId: string, subjects: string[]) => ({
      principal: desk,
      requestId,
      operationName: "Mixed",
      operationHash: "0".repeat(64),
      departments: ["hukou"],
      subjects: accesses(subjects),
    });
    const ids = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(4, "0")}`);
    await ledger.moved();
    const before = (() => {
      const sqlite = openAuditDatabase(data.dir, { existing: true });
      const { entries } = verifyChain(sqlite);
      sqlite.close();
      return entries;
    })();
    const written = (requestId: string) => {
      const reader = new Database(auditDatabasePath(data.dir), { readonly: true });
      const row = reader.prepare("SELECT 1 FROM requests WHERE request_id = ?").get(requestId);
      reader.close();
      return row !== undefined;
    };

    // Another process (an auditor's long transaction, say) holds the write lock: requests are
    // still acknowledged, their accesses durable in the journal, not yet in audit.db.
    const holder = new Database(auditDatabasePath(data.dir));
    holder.exec("BEGIN IMMEDIATE");
    try {
      await Promise.all([
        ...Array.from({ length: 5 }, (_, i) =>
          ledger.append(record(`small-${i}`, [`1101061990010200${i}`])),
        ),
        ledger.append(record("large-1", ids("11010519900101", 100))),
      ]);
      expect(written("small-0")).toBe(false);
      expect(written("large-1")).toBe(false);
      // A read, or a wait for the move, cannot see those accesses while audit.db stays locked
      // past its busy timeout: they fail rather than answer without them.
      const [read, move] = await Promise.allSettled([
        ledger.entriesFor("11010619900102003"),
        ledger.moved(),
      ]);
      for (const settled of [read, move]) {
        expect(settled.status).toBe("rejected");
        expect((settled as PromiseRejectedResult).reason).toBeInstanceOf(LedgerUnavailable);
        expect(String((settled as PromiseRejectedResult).reason.message)).toMatch(
          /audit\.db could not be written: database is locked/,
        );
      }
      expect(ledger.available).toBe(true);
    } finally {
      holder.exec("COMMIT");
      holder.close();
    }
    await Promise.all([
      ledger.append(record("large-2", ids("11010719900101", 100))),
      ...Array.from({ length: 20 }, (_, i) =>
        ledger.append(record(`loop-${i}`, [`110108199001030${String(i).padStart(2, "0")}`])),
      ),
    ]);
    await ledger.moved();

    const sqlite = openAuditDatabase(data.dir, { existing: true });
    try {
      expect(verifyChain(sqlite)).toMatchObject({ ok: true, entries: before + 5 + 100 + 100 + 20 });
      expect(subjectEntries(sqlite, "11010619900102003")).toEqual([
        expect.objectContaining({ requestId: "small-3" }),
      ]);
    } finally {
      sqlite.close();
    }
  });

  it("refuses a subject that is not an identifier, and writes nothing for it", async () => {
    await expect(
      ledger.append({
        principal: desk,
        requestId: "bad",
        operationName: null,
        operationHash: "0".repeat(64),
        departments: [],
        subjects: accesses(["110105\t1990"]),
      }),
    ).rejects.toThrow(/not a subject identifier/);
  });

  it("refuses to extend a ledger of another format", async () => {
    const other = tempDataDir();
    try {
      const file = new Database(auditDatabasePath(other.dir));
      file.exec("CREATE TABLE entries (seq INTEGER PRIMARY KEY, subject TEXT)");
      file.close();
      await expect(AuditLedger.open(other.dir, "full")).rejects.toThrow(/ledger format 0/);
    } finally {
      other.remove();
    }
  });
});
