import { closeSync, openSync } from "node:fs";
import Database from "better-sqlite3";

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
 * Jobs one process at a time may run (a verification job of the gateway's queue, a run of
 * `npm run verify` on its output), claimed by name in a SQLite file: a claim names its process,
 * and a dead process's claim is taken over. The check and the take are one write transaction,
 * so two processes finding the same dead holder cannot both take it — with a lock file each could
 * remove the other's new lock, and a reader could meet a lock created but not yet written. (The
 * table is the one the job queue's claims have always had: gateways of an earlier version sharing
 * a jobs folder see the same claims.)
 */
export class ProcessClaims {
  private constructor(private readonly sqlite: Database.Database) {}

  /** Opens (or creates, readable by its owner only: it names jobs) the claims in `file`. */
  static open(file: string): ProcessClaims {
    closeSync(openSync(file, "a", 0o600));
    const sqlite = new Database(file);
    try {
      sqlite.pragma("busy_timeout = 5000");
      sqlite.exec(
        "CREATE TABLE IF NOT EXISTS claims (job TEXT PRIMARY KEY, pid INTEGER NOT NULL) STRICT",
      );
    } catch (error) {
      sqlite.close();
      throw error;
    }
    return new ProcessClaims(sqlite);
  }

  /** Claims `job` unless a running process holds it; returns the process that holds it now. */
  take(job: string): number {
    const take = this.sqlite.transaction((claimed: string): number => {
      const held = this.sqlite.prepare("SELECT pid FROM claims WHERE job = ?").get(claimed) as
        | { pid: number }
        | undefined;
      if (held && held.pid !== process.pid && isProcessRunning(held.pid)) return held.pid;
      this.sqlite
        .prepare(
          "INSERT INTO claims (job, pid) VALUES (?, ?) ON CONFLICT (job) DO UPDATE SET pid = excluded.pid",
        )
        .run(claimed, process.pid);
      return process.pid;
    });
    // IMMEDIATE: the write lock first, so that the read and the write are one step for others.
    return take.immediate(job);
  }

  /** Gives up this process's claim on `job` (another process's is left alone). */
  release(job: string): void {
    this.sqlite.prepare("DELETE FROM claims WHERE job = ? AND pid = ?").run(job, process.pid);
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
  }
}
