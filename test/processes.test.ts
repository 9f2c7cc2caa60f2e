/**
 * Whether another process still runs, told by a lock the kernel lets go of when it ends: the
 * audit journals' and the verification claims' test, which a process number cannot be in another
 * PID namespace (a container's gateway and this one may both be process 1).
 */
import { existsSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { ProcessClaims, ProcessLock } from "../common/processes.ts";
import { holder, tempDataDir } from "./helpers.ts";

let data: ReturnType<typeof tempDataDir>;
afterEach(() => data?.remove());

describe("a process lock", () => {
  it("is held while its process runs and free once it is killed; no file, no answer", async () => {
    data = tempDataDir();
    const path = join(data.dir, "x.alive");
    expect(ProcessLock.held(path)).toBeNull();
    const other = await holder("lock", path);
    try {
      expect(ProcessLock.held(path)).toBe(true);
      expect(ProcessLock.held(path)).toBe(true); // testing it does not take it away
    } finally {
      await other.kill();
    }
    expect(ProcessLock.held(path)).toBe(false);
    // Found under its name only once locked; no rollback journal beside it.
    expect(readdirSync(data.dir)).toEqual(["x.alive"]);
  });

  it("cannot be told from a file that is not a lock (another user's, damaged): null", () => {
    data = tempDataDir();
    const path = join(data.dir, "damaged.alive");
    writeFileSync(path, "not a database, but long enough to have a header of its own");
    expect(ProcessLock.held(path)).toBeNull();
  });

  it("is held for the other connections of its own process, and its file goes with it", () => {
    data = tempDataDir();
    const path = join(data.dir, "mine.alive");
    const lock = ProcessLock.hold(path);
    expect(ProcessLock.held(path)).toBe(true);
    expect(() => ProcessLock.hold(path)).toThrow(/EEXIST/);
    lock.release();
    expect(existsSync(path)).toBe(false);
    const kept = ProcessLock.hold(path);
    kept.release(true);
    expect(ProcessLock.held(path)).toBe(false);
  });
});

describe("claims", () => {
  it("are not taken from a running holder, even one of the same process number elsewhere", async () => {
    data = tempDataDir();
    const file = join(data.dir, "out.claim.db");
    const other = await holder("claim", file, "output");
    const claims = ProcessClaims.open(file);
    // Killed however the test ends: `kill` again after it was killed waits for nothing.
    onTestFinished(() => other.kill());
    try {
      expect(claims.take("output")).toEqual({ mine: false, holder: other.pid });
      // Another container's run, whose number here happens to be this process's own: its lock
      // named by that number (renamed, it stays locked: the lock is the file's, not the name's).
      const sqlite = new Database(file);
      const { lock } = sqlite.prepare("SELECT lock FROM claims").get() as { lock: string };
      const renamed = lock.replace(`-${other.pid}-`, `-${process.pid}-`);
      renameSync(join(data.dir, lock), join(data.dir, renamed));
      sqlite.prepare("UPDATE claims SET pid = ?, lock = ?").run(process.pid, renamed);
      sqlite.close();
      expect(claims.take("output").mine).toBe(false);
      await other.kill();
      // Ended: taken over at once, and its lock file goes.
      expect(claims.take("output")).toEqual({ mine: true, holder: process.pid });
      expect(readdirSync(data.dir).filter((name) => name.endsWith(".alive"))).toHaveLength(1);
      expect(claims.take("output").mine).toBe(true);
      claims.release("output");
      expect(claims.holder("output")).toBeNull();
    } finally {
      claims.close();
    }
    expect(readdirSync(data.dir).filter((name) => name.endsWith(".alive"))).toEqual([]);
  });

  it("of a holder that ended are taken over, its lock file gone or not, whatever its number", () => {
    data = tempDataDir();
    const file = join(data.dir, "out.claim.db");
    // A claim of a process numbered as this one's parent here (running), in another container:
    // its lock, free, tells that it ended — and stays told once a sweep has removed the file.
    const lockName = `out.claim.db-${process.ppid}-0123456789ab.alive`;
    ProcessLock.hold(join(data.dir, lockName)).release(true);
    ProcessClaims.open(file).close();
    const sqlite = new Database(file);
    sqlite.prepare("INSERT INTO claims VALUES ('output', ?, ?)").run(process.ppid, lockName);
    // An earlier version took this one over, leaving the previous holder's lock in the row.
    sqlite
      .prepare("INSERT INTO claims VALUES ('job', ?, ?)")
      .run(process.ppid, "out.claim.db-1-0123456789ab.alive");
    // A row naming another file is not followed.
    sqlite.prepare("INSERT INTO claims VALUES ('odd', 2147483646, '../audit.db')").run();
    sqlite.close();
    const claims = ProcessClaims.open(file);
    try {
      expect(claims.take("output").mine).toBe(true);
      expect(existsSync(join(data.dir, lockName))).toBe(false);
      expect(claims.take("job")).toEqual({ mine: false, holder: process.ppid });
      expect(claims.take("odd").mine).toBe(true);
    } finally {
      claims.close();
    }
  });

  it("of an earlier version (no lock) are judged by the process number", () => {
    data = tempDataDir();
    const file = join(data.dir, "jobs.claims.db");
    const sqlite = new Database(file);
    sqlite.exec("CREATE TABLE claims (job TEXT PRIMARY KEY, pid INTEGER NOT NULL) STRICT");
    sqlite
      .prepare("INSERT INTO claims VALUES ('running', ?), ('ended', 2147483646)")
      .run(process.ppid);
    sqlite.close();
    const claims = ProcessClaims.open(file);
    try {
      expect(claims.take("running")).toEqual({ mine: false, holder: process.ppid });
      expect(claims.take("ended").mine).toBe(true);
    } finally {
      claims.close();
    }
  });
});
