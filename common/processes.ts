import { randomBytes } from "node:crypto";
import { closeSync, existsSync, linkSync, openSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";
import { removeFile } from "./files.ts";

/**
 * Whether a process of this number is running: the test behind the locks and journals a dead
 * process leaves (EPERM means it runs, as another user).
 */
export function isProcessRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A lock that a running process holds on a file of its own, and that the operating system lets go
 * of when the process ends, however it ends (a crash, `kill -9`, a container stopped): whether the
 * process still runs is then told by the lock, not by a process number — which means nothing in
 * another PID namespace (a container, where the gateway is often process 1) and may have been
 * reused — nor by how recently a file was touched (a process paused, or its host suspended, is
 * not gone).
 *
 * The file is a SQLite database held in an exclusive transaction that is never committed: SQLite
 * takes POSIX advisory locks, which the kernel keeps per open file and drops with the process, on
 * the same host whatever the namespace, and it keeps several connections of one process (a second
 * ledger in a test, the writer thread) from releasing each other's locks. No native addon
 * beyond the one the ledger already uses. The directory must be on a filesystem that shares
 * POSIX locks between its users, as `audit.db`'s write-ahead log already requires (one host, not
 * a network file system).
 */
export class ProcessLock {
  private constructor(
    readonly path: string,
    private readonly sqlite: Database.Database,
  ) {}

  /**
   * Creates `path` (it must not exist) and holds its lock until `release` or the process ends.
   * The file is locked under a name of its own first and then linked into place, so that nobody
   * finds it at `path` unlocked (and takes its process for ended).
   */
  static hold(path: string): ProcessLock {
    const unlocked = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}`);
    closeSync(openSync(unlocked, "wx", 0o600));
    let sqlite: Database.Database | null = null;
    try {
      sqlite = new Database(unlocked, { fileMustExist: true, timeout: 0 });
      // No rollback journal beside it (the transaction writes nothing worth keeping).
      sqlite.pragma("journal_mode = MEMORY");
      sqlite.exec("BEGIN EXCLUSIVE");
      linkSync(unlocked, path); // the same file, locked: fails if `path` exists
      return new ProcessLock(path, sqlite);
    } catch (error) {
      sqlite?.close();
      throw error;
    } finally {
      removeFile(unlocked);
    }
  }

  /**
   * Whether a running process holds the lock at `path`: true, false (it ended, or let go), or
   * null when that cannot be told — no such file, or one that cannot be opened or is not a lock
   * (another user's, damaged): the caller then judges as it would without a lock. Testing takes
   * the lock for a moment: two tests at once may each find it held, never both free while its
   * process runs.
   */
  static held(path: string): boolean | null {
    if (!existsSync(path)) return null;
    let sqlite: Database.Database;
    try {
      sqlite = new Database(path, { fileMustExist: true, timeout: 0 });
    } catch {
      return null;
    }
    try {
      sqlite.exec("BEGIN IMMEDIATE");
      sqlite.exec("ROLLBACK");
      return false;
    } catch (error) {
      return (error as { code?: string }).code === "SQLITE_BUSY" ? true : null;
    } finally {
      sqlite.close();
    }
  }

  /**
   * Lets go of the lock and removes its file; with `keepFile`, leaves the file, whose free lock
   * then tells others that what it guarded is abandoned.
   */
  release(keepFile = false): void {
    if (!this.sqlite.open) return;
    if (!keepFile) removeFile(this.path);
    this.sqlite.close();
  }
}

/**
 * Jobs one process at a time may run (a verification job of the gateway's queue, a run of
 * `npm run verify` on its output), claimed by name in a SQLite file: a claim names its process
 * and the lock file that process holds while it runs (`ProcessLock`, one per `ProcessClaims`,
 * beside the file), and a claim whose holder has ended is taken over. Whether the holder runs is
 * told by its lock — in any PID namespace, which a process number is not — and, for a claim of an
 * earlier version without one, by its process number. The check and the take are one write
 * transaction, so two processes finding the same ended holder cannot both take it — with a lock
 * file alone each could remove the other's new lock, and a reader could meet a lock created but
 * not yet written. (The table is the one the job queue's claims have always had, a column added:
 * gateways of an earlier version sharing a jobs folder see the same claims.)
 */
export class ProcessClaims {
  /** This process's lock, taken at its first claim. */
  private lock: ProcessLock | null = null;

  private constructor(
    private readonly sqlite: Database.Database,
    private readonly file: string,
  ) {}

  /** Opens (or creates, readable by its owner only: it names jobs) the claims in `file`. */
  static open(file: string): ProcessClaims {
    closeSync(openSync(file, "a", 0o600));
    const sqlite = new Database(file);
    try {
      sqlite.pragma("busy_timeout = 5000");
      // One write transaction: two processes opening an earlier version's file at once must not
      // both add the column.
      sqlite
        .transaction(() => {
          sqlite.exec(
            "CREATE TABLE IF NOT EXISTS claims (job TEXT PRIMARY KEY, pid INTEGER NOT NULL, lock TEXT) STRICT",
          );
          const columns = sqlite.pragma("table_info(claims)") as Array<{ name: string }>;
          if (!columns.some((column) => column.name === "lock")) {
            sqlite.exec("ALTER TABLE claims ADD COLUMN lock TEXT");
          }
        })
        .immediate();
    } catch (error) {
      sqlite.close();
      throw error;
    }
    return new ProcessClaims(sqlite, file);
  }

  /**
   * Claims `job` unless a running process holds it. `mine`: this process holds it now (it took
   * it, or held it already); otherwise `holder` is the process number of the one that does.
   */
  take(job: string): { mine: boolean; holder: number } {
    const lock = this.ownLock();
    const take = this.sqlite.transaction((claimed: string) => {
      const held = this.sqlite.prepare("SELECT pid, lock FROM claims WHERE job = ?").get(claimed) as
        | { pid: number; lock: string | null }
        | undefined;
      if (held && held.lock !== lock) {
        // A lock named by this claim's own process (a process of an earlier version taking over
        // a claim leaves the previous holder's lock in the row): held, it runs; free or gone, it
        // has ended. Without one, or one that cannot be tested, its process number tells.
        const lockPath =
          held.lock !== null && this.isLockOf(held.lock, held.pid) ? this.sibling(held.lock) : null;
        // A lock file removed: its process let go of it, or a sweep cleaned it up.
        const running =
          lockPath === null ? null : existsSync(lockPath) ? ProcessLock.held(lockPath) : false;
        if (running ?? (held.pid !== process.pid && isProcessRunning(held.pid))) {
          return { mine: false, holder: held.pid };
        }
        // Ended: its lock file, if any, guards nothing any more.
        if (lockPath !== null && running === false) removeFile(lockPath);
      }
      this.sqlite
        .prepare(
          "INSERT INTO claims (job, pid, lock) VALUES (?, ?, ?) ON CONFLICT (job) DO UPDATE SET pid = excluded.pid, lock = excluded.lock",
        )
        .run(claimed, process.pid, lock);
      return { mine: true, holder: process.pid };
    });
    // IMMEDIATE: the write lock first, so that the read and the write are one step for others.
    return take.immediate(job);
  }

  /** Gives up this process's claim on `job` (another process's is left alone). */
  release(job: string): void {
    this.sqlite
      .prepare("DELETE FROM claims WHERE job = ? AND pid = ? AND lock IS ?")
      .run(job, process.pid, this.lock ? basename(this.lock.path) : null);
  }

  /** The process holding `job`, if any (running or not). */
  holder(job: string): number | null {
    const held = this.sqlite.prepare("SELECT pid FROM claims WHERE job = ?").get(job) as
      | { pid: number }
      | undefined;
    return held?.pid ?? null;
  }

  close(): void {
    this.sqlite.close();
    this.lock?.release();
  }

  /** The name of this process's lock file, beside the claims (created at the first claim). */
  private ownLock(): string {
    if (!this.lock) {
      // Lock files of processes that ended without closing (killed). A claim still naming one
      // counts as ended without it.
      for (const name of readdirSync(dirname(this.file))) {
        if (!this.isLockOf(name) || ProcessLock.held(this.sibling(name)) !== false) continue;
        removeFile(this.sibling(name));
      }
      const random = randomBytes(6).toString("hex");
      this.lock = ProcessLock.hold(
        this.sibling(`${basename(this.file)}-${process.pid}-${random}.alive`),
      );
    }
    return basename(this.lock.path);
  }

  /**
   * Whether `name` is a lock file of these claims (of process `pid`, if given): checked before it
   * is used as a path, so that a row cannot name another file.
   */
  private isLockOf(name: string, pid?: number): boolean {
    const prefix = `${basename(this.file)}-`;
    if (!name.startsWith(prefix)) return false;
    const match = /^(\d+)-[0-9a-f]{12}\.alive$/.exec(name.slice(prefix.length));
    return match !== null && (pid === undefined || Number(match[1]) === pid);
  }

  private sibling(name: string): string {
    return join(dirname(this.file), name);
  }
}
