/**
 * The audit journal: what the gateway acknowledged survives the gateway being killed — moved into
 * audit.db exactly once by the next gateway or by `npm run audit` — a journal that starts over at
 * its beginning is read correctly across rounds, and a torn or edited journal is read up to where
 * it still holds.
 */
import { hash } from "node:crypto";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  abandonedJournals,
  type JournalEnd,
  JournalWriter,
  journalLockPath,
  journalProgress,
  journalStart,
  NAMESPACE,
  Progress,
  readJournal,
  SECOND_LOOK_MS,
  STALE_JOURNAL_MS,
  scanJournal,
} from "../../gateway/ledger/journal.ts";
import { type AccessRecord, AuditLedger } from "../../gateway/ledger/ledger.ts";
import {
  JournalTaken,
  moveAbandonedJournals,
  openAuditDatabase,
  recordAppender,
  subjectEntries,
  verifyChain,
} from "../../gateway/ledger/store.ts";
import type { WireRecord } from "../../gateway/ledger/wire.ts";
import { audit, fixtureProcess, holder, tempDataDir, until } from "../helpers.ts";

const CHILD = new URL("./fixtures/journal-child.ts", import.meta.url).pathname;

let data: ReturnType<typeof tempDataDir>;
afterEach(() => data?.remove());

/** Runs a ledger in a child process, lets it acknowledge, and kills it (SIGKILL). */
async function killedAfterAcknowledging(
  dir: string,
  options: { journalBytes: number; moved: number; held: number },
): Promise<void> {
  const child = await fixtureProcess(
    CHILD,
    [dir, String(options.journalBytes), String(options.moved), String(options.held)],
    "acknowledged",
  );
  await child.kill();
}

function journals(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith(".journal"));
}

function ledgerFile<T>(dir: string, read: (sqlite: ReturnType<typeof openAuditDatabase>) => T): T {
  const sqlite = openAuditDatabase(dir, { existing: true });
  try {
    return read(sqlite);
  } finally {
    sqlite.close();
  }
}

function record(index: number): WireRecord {
  return {
    at: "2026-12-05T00:00:00.000Z",
    requestId: `r-${index}`,
    deskId: "d",
    deskName: "Desk",
    purpose: "p",
    legalBasis: null,
    caseId: null,
    operationName: "One",
    operationHash: "0".repeat(64),
    departments: ["hukou"],
    selections: [{ fields: ["Person.alive"], denied: [] }],
    subjects: `110105199001${String(index).padStart(6, "0")}`,
    picks: new Uint16Array(1),
    outcomes: "a",
  };
}

describe("a gateway killed after acknowledging", () => {
  it("loses no acknowledged access: the next gateway moves its journal into audit.db, once", async () => {
    data = tempDataDir();
    await killedAfterAcknowledging(data.dir, { journalBytes: 1 << 20, moved: 30, held: 25 });
    // The 25 held back by the lock are only in the dead process's journal.
    expect(ledgerFile(data.dir, verifyChain)).toMatchObject({ ok: true, entries: 30 });
    expect(journals(data.dir)).toHaveLength(1);

    const ledger = await AuditLedger.open(data.dir, "full");
    try {
      expect(ledger.recovered).toEqual({ entries: 25, problems: [], migrated: null });
      const held = await ledger.entriesFor("110105199001000007");
      expect(held.map((entry) => entry.requestId).sort()).toEqual(["held-7", "moved-7"]);
    } finally {
      await ledger.close();
    }
    expect(ledgerFile(data.dir, verifyChain)).toMatchObject({ ok: true, entries: 55 });
    // Neither journal nor lock file is left: the dead one's, moved; the ledger's own, closed.
    expect(readdirSync(data.dir).filter((file) => file.startsWith("audit-"))).toEqual([]);
  });

  it("is moved by npm run audit too, and across a journal that had started over", async () => {
    data = tempDataDir();
    // A journal of 4 KiB starts over every dozen records: 300 records make many rounds.
    await killedAfterAcknowledging(data.dir, { journalBytes: 4096, moved: 300, held: 20 });
    const { code, stdout, stderr } = await audit(data.dir, "verify");
    expect(code).toBe(0);
    expect(stderr).toMatch(/moved 20 entries from a stopped gateway's journal/);
    expect(stdout).toMatch(/chain intact: 320 entries/);
    expect(journals(data.dir)).toEqual([]);
    const entries = ledgerFile(data.dir, (sqlite) => subjectEntries(sqlite, "110105199001000019"));
    expect(entries.map((entry) => entry.requestId).sort()).toEqual(["held-19", "moved-19"]);
    expect(entries[0]?.desk).toBe("崩溃测试");
  });
});

describe("a gateway sharing the directory with one that is killed", () => {
  it("moves the peer's journal while it runs, before answering a citizen's read", async () => {
    data = tempDataDir();
    // Its writer's periodic look is an hour away: the read itself has to move the journal.
    const running = await AuditLedger.open(data.dir, "full", { abandonedEveryMs: 3_600_000 });
    try {
      await killedAfterAcknowledging(data.dir, { journalBytes: 1 << 20, moved: 30, held: 25 });
      expect(journals(data.dir)).toHaveLength(2);
      const moved = new Promise((resolve) => {
        running.onRecovered = resolve;
      });
      const held = await running.entriesFor("110105199001000007");
      expect(held.map((entry) => entry.requestId).sort()).toEqual(["held-7", "moved-7"]);
      expect(await moved).toEqual({ entries: 25, problems: [] });
      expect(journals(data.dir)).toHaveLength(1);
    } finally {
      await running.close();
    }
    expect(ledgerFile(data.dir, verifyChain)).toMatchObject({ ok: true, entries: 55 });
  });

  it("judges another container's journal by its age, not by a process number of this one", () => {
    data = tempDataDir();
    const now = Date.now();
    const named = (name: string, ageMs: number) => {
      writeFileSync(join(data.dir, name), "");
      const at = new Date(now - ageMs);
      utimesSync(join(data.dir, name), at, at);
      return name;
    };
    // A container's gateway is often process 1, as this one may be in its own container.
    named(`audit-${process.pid}@another-container-0123456789ab.journal`, 1_000);
    const stopped = named("audit-1@another-container-ba9876543210.journal", 2 * STALE_JOURNAL_MS);
    // Of this PID namespace: judged by the process number (this process's left by a failed
    // ledger only at start, when every journal it holds open is known; one of a gateway of an
    // earlier version, which named no namespace, only at start too).
    const mine = named(`audit-${process.pid}@${NAMESPACE}-000000000001.journal`, 0);
    const legacy = named(`audit-${process.pid}-000000000002.journal`, 0);
    expect(abandonedJournals(data.dir, new Set(), true, now).sort()).toEqual(
      [stopped, mine, legacy].sort(),
    );
    expect(abandonedJournals(data.dir, new Set([mine, legacy]), true, now)).toEqual([stopped]);
    // A running gateway takes it only when a second look, seconds later, finds it stale still
    // (after a host's suspend, the first may come before its gateway has touched it again).
    expect(abandonedJournals(data.dir, new Set(), false, now, 0)).toEqual([]);
    expect(abandonedJournals(data.dir, new Set(), false, now, 1_000)).toEqual([]);
    expect(abandonedJournals(data.dir, new Set(), false, now, SECOND_LOOK_MS)).toEqual([stopped]);
    // Touched between two looks: not taken.
    expect(abandonedJournals(data.dir, new Set(), false, now, 10_000)).toEqual([]);
    utimesSync(join(data.dir, stopped), new Date(now), new Date(now));
    expect(abandonedJournals(data.dir, new Set(), false, now, 20_000)).toEqual([]);
  });

  it("judges a journal by its process's lock, in any namespace: held, kept however old; let go, moved at once", async () => {
    data = tempDataDir();
    // Another container's gateway, paused (or its host suspended) for two minutes: untouched for
    // longer than a stale journal, yet its process runs and holds the lock.
    const name = "audit-1@another-container-0123456789ab.journal";
    const journal = join(data.dir, name);
    writeFileSync(journal, "");
    const old = new Date(Date.now() - 2 * STALE_JOURNAL_MS);
    utimesSync(journal, old, old);
    const running = await holder("lock", journalLockPath(journal));
    try {
      expect(abandonedJournals(data.dir, new Set(), true)).toEqual([]);
      expect(abandonedJournals(data.dir, new Set(), false, Date.now(), 0)).toEqual([]);
      expect(abandonedJournals(data.dir, new Set(), false, Date.now(), 2 * SECOND_LOOK_MS)).toEqual(
        [],
      );
    } finally {
      await running.kill();
    }
    // Its process ended a moment ago (a container restarted: a new PID namespace, the journal
    // touched a second before): one look, at start or while running, tells.
    utimesSync(journal, new Date(), new Date());
    expect(abandonedJournals(data.dir, new Set(), true)).toEqual([name]);
    expect(abandonedJournals(data.dir, new Set(), false)).toEqual([name]);
    const sqlite = openAuditDatabase(data.dir);
    try {
      moveAbandonedJournals(sqlite, data.dir, new Set(), false);
    } finally {
      sqlite.close();
    }
    expect(readdirSync(data.dir).filter((file) => file.startsWith("audit-"))).toEqual([]);
  });

  it("removes a lock file no process holds and no journal needs, and keeps one held", async () => {
    data = tempDataDir();
    const orphan = join(data.dir, "audit-7@elsewhere-000000000007.alive");
    const starting = join(data.dir, "audit-8@elsewhere-000000000008.alive");
    const ended = await holder("lock", orphan);
    await ended.kill();
    const running = await holder("lock", starting);
    try {
      const sqlite = openAuditDatabase(data.dir);
      try {
        moveAbandonedJournals(sqlite, data.dir, new Set(), false);
      } finally {
        sqlite.close();
      }
      expect(existsSync(orphan)).toBe(false);
      expect(existsSync(starting)).toBe(true);
    } finally {
      await running.kill();
    }
  });

  it("appends nothing when another gateway has moved its journal meanwhile", () => {
    data = tempDataDir();
    const sqlite = openAuditDatabase(data.dir);
    try {
      const append = recordAppender(sqlite);
      const key = "journal:audit-1@elsewhere-000000000000.journal";
      // The owner moved lines 1–2; a gateway that judged it stopped then moved lines 3–4.
      append([record(1)], [key, "2 h2", null]);
      append([record(2)], [key, "4 h4", "2 h2"]);
      // The owner, resuming where it left the journal, would move lines 3–4 a second time.
      expect(() => append([record(3)], [key, "4 h4", "2 h2"])).toThrow(JournalTaken);
      expect(verifyChain(sqlite)).toMatchObject({ ok: true, entries: 2 });
    } finally {
      sqlite.close();
    }
  });

  it("moved from under a running ledger: every access it acknowledged is in audit.db once", async () => {
    data = tempDataDir();
    const ledger = await AuditLedger.open(data.dir, "full", { abandonedEveryMs: 3_600_000 });
    const taker = openAuditDatabase(data.dir);
    const acknowledged: string[] = [];
    const append = (id: string) =>
      ledger.append(access(id, "110105194912310021")).then(
        () => void acknowledged.push(id),
        () => {},
      );
    try {
      // The taker holds audit.db, so the ledger's writer cannot move these three; then it moves
      // them itself, as a gateway does with a journal it judges abandoned, and deletes the file.
      taker.exec("BEGIN IMMEDIATE");
      await Promise.all(["r1", "r2", "r3"].map(append));
      // A gateway of an earlier version, which knows no lock, judging by time or process number:
      // its lock file out of sight, the journal is judged as such a gateway judges it.
      for (const file of readdirSync(data.dir).filter((file) => file.endsWith(".alive"))) {
        rmSync(join(data.dir, file));
      }
      expect(moveAbandonedJournals(taker, data.dir, new Set(), true).entries).toBe(3);
      taker.exec("COMMIT");
      await append("r4");
      await until(() => !ledger.available, 5_000);
      await ledger.moved().catch(() => {});
      expect(ledger.available).toBe(false);
    } finally {
      taker.close();
      await ledger.close();
    }
    const rows = ledgerFile(data.dir, (sqlite) =>
      sqlite.prepare("SELECT request_id FROM requests ORDER BY seq").pluck().all(),
    );
    expect(acknowledged.slice(0, 3)).toEqual(["r1", "r2", "r3"]);
    expect(rows).toEqual(acknowledged);
    expect(ledgerFile(data.dir, verifyChain)).toMatchObject({ ok: true });
  });

  it("stops acknowledging once its journal is gone, rather than write to a removed file", async () => {
    data = tempDataDir();
    const ledger = await AuditLedger.open(data.dir, "full");
    try {
      await ledger.append(access("before", "110105194912310021"));
      const [journal] = journals(data.dir);
      rmSync(join(data.dir, journal as string));
      await until(() => !ledger.available, 5_000);
      expect(ledger.available).toBe(false);
      await expect(ledger.append(access("after", "110105194912310021"))).rejects.toThrow(/is gone/);
    } finally {
      await ledger.close();
    }
  });
});

describe("a journal read back", () => {
  it("stops at a line torn by a crash, which was never acknowledged", async () => {
    data = tempDataDir();
    const journal = JournalWriter.create(data.dir, journalProgress(), 1 << 16);
    const end = journal.append([record(1), record(2), record(3)]);
    journal.flushSync();
    journal.close();
    journal.releaseLock(); // as its process ending would
    const fd = openSync(journal.path, "r+");
    const torn = Buffer.from('4\tabc\t{"at":"2026');
    writeSync(fd, torn, 0, torn.length, end.end);
    closeSync(fd);

    const scanned = scanJournal(readJournal(journal.path), journalStart(journal.name));
    expect(scanned.records.map((r) => r.requestId)).toEqual(["r-1", "r-2", "r-3"]);
    expect(scanned.problem).toBeNull();

    const ledger = await AuditLedger.open(data.dir, "full");
    await ledger.close();
    expect(ledger.recovered).toEqual({ entries: 3, problems: [], migrated: null });
    expect(existsSync(journal.path)).toBe(false);
  });

  it("names the line where an edited journal stops holding, and moves what comes before it", async () => {
    data = tempDataDir();
    const journal = JournalWriter.create(data.dir, journalProgress(), 1 << 16);
    journal.append([record(1), record(2), record(3), record(4)]);
    journal.flushSync();
    journal.close();
    journal.releaseLock(); // as its process ending would
    const text = readJournal(journal.path);
    const at = text.indexOf("r-3");
    const fd = openSync(journal.path, "r+");
    writeSync(fd, Buffer.from("r-9"), 0, 3, Buffer.byteLength(text.slice(0, at)));
    closeSync(fd);

    const ledger = await AuditLedger.open(data.dir, "full");
    await ledger.close();
    expect(ledger.recovered.entries).toBe(2);
    expect(ledger.recovered.problems).toEqual([
      // Line 1 is the records' context: r-3 is on line 4.
      expect.stringMatching(/line 4 does not match its hash/),
    ]);
    // Kept as evidence, under a name no ledger moves again; not deleted.
    expect(existsSync(journal.path)).toBe(false);
    expect(existsSync(`${journal.path}.damaged`)).toBe(true);
    // The audit says the ledger is not whole while it is kept, whoever kept it.
    const verified = await audit(data.dir, "verify");
    expect(verified.code).toBe(1);
    expect(verified.stderr).toContain(`a damaged journal is kept: ${journal.name}.damaged`);
  });

  it("writes a context once per round and names it in each record", () => {
    data = tempDataDir();
    const journal = JournalWriter.create(data.dir, journalProgress(), 1 << 16);
    const other = { ...record(4), deskId: "e", deskName: "Other desk" };
    journal.append([record(1), record(2)]);
    journal.append([record(3), other]);
    journal.flushSync();
    journal.close();
    journal.releaseLock(); // as its process ending would
    const text = readJournal(journal.path);
    const lines = text.slice(0, text.indexOf("\0")).trimEnd().split("\n");
    // A context line for "d", three records, a context line for "e", one record.
    expect(lines.map((line) => line.split("\t")[2]?.slice(0, 12))).toEqual([
      '{"context":{',
      '{"at":"2026-',
      '{"at":"2026-',
      '{"at":"2026-',
      '{"context":{',
      '{"at":"2026-',
    ]);
    const scanned = scanJournal(text, journalStart(journal.name));
    expect(scanned.problem).toBeNull();
    expect(scanned.records).toEqual([record(1), record(2), record(3), other]);
  });

  it("refuses a record whose context was edited, also among the lines already moved", () => {
    data = tempDataDir();
    const journal = JournalWriter.create(data.dir, journalProgress(), 1 << 16);
    journal.append([record(1), record(2), record(3)]);
    journal.flushSync();
    journal.close();
    journal.releaseLock(); // as its process ending would
    const text = readJournal(journal.path);
    const [seq, movedHash] = text.split("\n")[1]?.split("\t") ?? [];
    const fd = openSync(journal.path, "r+");
    writeSync(
      fd,
      Buffer.from("Dusk"),
      0,
      4,
      Buffer.byteLength(text.slice(0, text.indexOf("Desk"))),
    );
    closeSync(fd);

    // Lines 1 (the context) and 2 are in audit.db already: line 3 names a context no longer there.
    const edited = readJournal(journal.path);
    const scanned = scanJournal(edited, { seq: Number(seq), hash: movedHash ?? "" });
    expect(scanned.records).toEqual([]);
    expect(scanned.problem).toMatch(/^line 3: its context [0-9a-f]{32} is not in the journal$/);
    // Read from its start, the journal breaks at the edited line itself.
    expect(scanJournal(edited, journalStart(journal.name)).problem).toMatch(
      /line 1 does not match its hash/,
    );
  });

  it("reads the whole-record lines of journals written before contexts", () => {
    data = tempDataDir();
    const name = "audit-1-000000000000.journal";
    let previous = name;
    let text = "";
    for (let index = 1; index <= 2; index++) {
      const json = JSON.stringify({ ...record(index), picks: [0] });
      previous = hash("sha256", `${previous}\n${json}`, "hex");
      text += `${index}\t${previous}\t${json}\n`;
    }
    const scanned = scanJournal(text, journalStart(name));
    expect(scanned.problem).toBeNull();
    expect(scanned.records).toEqual([record(1), record(2)]);
  });

  it("leaves the journal of a ledger still open in this process alone", async () => {
    data = tempDataDir();
    const first = await AuditLedger.open(data.dir, "full");
    try {
      const second = await AuditLedger.open(data.dir, "full");
      await second.close();
      expect(second.recovered.entries).toBe(0);
      expect(journals(data.dir)).toHaveLength(1);
    } finally {
      await first.close();
    }
    expect(journals(data.dir)).toEqual([]);
  });
});

/** One desk's access to one subject. */
function access(requestId: string, subject: string): AccessRecord {
  return {
    principal: {
      kind: "desk",
      deskId: "d",
      deskName: "Desk",
      purpose: "p",
      legalBasis: null,
      caseId: null,
      scopes: new Set(),
      citizenId: null,
    },
    requestId,
    operationName: "One",
    operationHash: "0".repeat(64),
    departments: ["hukou"],
    subjects: [{ subject, fields: ["Person.alive"], denied: [], outcome: "answered" }],
  };
}

describe("two ledgers of one process", () => {
  it("opened at once on one directory, each keeps its own journal and every access", async () => {
    data = tempDataDir();
    const [first, second] = await Promise.all([
      AuditLedger.open(data.dir, "full"),
      AuditLedger.open(data.dir, "full"),
    ]);
    try {
      expect(journals(data.dir)).toHaveLength(2);
      await Promise.all([
        first.append(access("first-1", "110105194912310021")),
        second.append(access("second-1", "11010519491231002X")),
      ]);
      await Promise.all([first.moved(), second.moved()]);
      expect((await second.entriesFor("11010519491231002X")).map((e) => e.requestId)).toEqual([
        "second-1",
      ]);
      expect((await first.entriesFor("110105194912310021")).map((e) => e.requestId)).toEqual([
        "first-1",
      ]);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
    expect(journals(data.dir)).toEqual([]);
  });
});

describe("a journal that starts over", () => {
  it("does not let a flush of the previous round mark lines of the new one durable", async () => {
    data = tempDataDir();
    const progress = journalProgress();
    const journal = JournalWriter.create(data.dir, progress, 1024);
    try {
      const durable = () => Atomics.load(progress, Progress.DurableEnd);
      const first = journal.append([record(1), record(2), record(3)]);
      // A flush in the thread pool starts, and another covering the same lines finishes first;
      // the writer moves everything, so the next write starts the file over.
      const late = await new Promise<JournalEnd>((resolve, reject) =>
        journal.flush((error, end) => (error ? reject(error) : resolve(end))),
      );
      journal.markDurable(journal.flushSync());
      expect(durable()).toBe(first.end);
      Atomics.store(progress, Progress.MovedEnd, first.end);
      Atomics.store(progress, Progress.MovedRound, first.round);
      const second = journal.append([record(4)]);
      expect(second.round).toBe(first.round + 1);
      expect(second.end).toBeLessThan(first.end);
      // The first flush's completion arrives now: it says nothing about the new round.
      journal.markDurable(late);
      expect(durable()).toBe(0);
      journal.markDurable(journal.flushSync());
      expect(durable()).toBe(second.end);
    } finally {
      journal.close();
      journal.releaseLock(); // as its process ending would
    }
  });

  it("writes in place once everything is moved, and chains every record in audit.db", async () => {
    data = tempDataDir();
    const ledger = await AuditLedger.open(data.dir, "full", { journalBytes: 4096 });
    try {
      for (let i = 0; i < 200; i++) {
        await ledger.append(access(`r-${i}`, `110105199001${String(i).padStart(6, "0")}`));
        if (i % 20 === 19) await ledger.moved();
      }
      await ledger.moved();
      // 200 records of ≈ 600 bytes in a file of 4 KiB: it started over many times.
      const [name] = journals(data.dir);
      const size = readJournal(join(data.dir, name as string)).length;
      expect(size).toBeLessThan(4096 + 20 * 1024);
    } finally {
      await ledger.close();
    }
    expect(ledgerFile(data.dir, verifyChain)).toMatchObject({ ok: true, entries: 200 });
  });
});
