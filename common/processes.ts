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
 * Work one process at a time may do (a verification job, an output file), claimed by name in a
 * SQLite file: a claim names its process, and a dead process's claim is taken over. The check and
 * the take are one write transaction, so two processes finding the same dead holder cannot both
 * take it — with a lock file each could remove the other's new lock, and a reader could meet a
 * lock created but not yet written.
 */
export class ProcessClaims {
  private constructor(private readonly sqlite: Database.Database) {}

  static open(file: string): ProcessClaims {
    const sqlite = new Database(file);
    // Its own table: a `claims` table in a jobs folder of an earlier version has other columns.
    try {
      sqlite.pragma("busy_timeout = 5000");
      sqlite.exec(
        "CREATE TABLE IF NOT EXISTS process_claims (name TEXT PRIMARY KEY, pid INTEGER NOT NULL) STRICT",
      );
    } catch (error) {
      sqlite.close();
      throw error;
    }
    return new ProcessClaims(sqlite);
  }

  /** Claims `name` unless a running process holds it; returns the process that holds it now. */
  take(name: string): number {
    const take = this.sqlite.transaction((claimed: string): number => {
      const held = this.sqlite
        .prepare("SELECT pid FROM process_claims WHERE name = ?")
        .get(claimed) as { pid: number } | undefined;
      if (held && held.pid !== process.pid && isProcessRunning(held.pid)) return held.pid;
      this.sqlite
        .prepare(
          "INSERT INTO process_claims (name, pid) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET pid = excluded.pid",
        )
        .run(claimed, process.pid);
      return process.pid;
    });
    // IMMEDIATE: the write lock first, so that the read and the write are one step for others.
    return take.immediate(name);
  }

  /** Gives up this process's claim on `name` (another process's is left alone). */
  release(name: string): void {
    this.sqlite
      .prepare("DELETE FROM process_claims WHERE name = ? AND pid = ?")
      .run(name, process.pid);
  }

  /** The process holding `name`, if any (running or not). */
  holder(name: string): number | null {
    const held = this.sqlite.prepare("SELECT pid FROM process_claims WHERE name = ?").get(name) as
      | { pid: number }
      | undefined;
    return held?.pid ?? null;
  }

  close(): void {
    this.sqlite.close();
  }
}
