/** File-system steps that several stores share. */
import { closeSync, fsyncSync, openSync, unlinkSync } from "node:fs";

/**
 * fsync by path: a file's data, or a folder's entries (a file just created or renamed in it is
 * then found after a power loss).
 */
export function syncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes a file that may be gone already (another process removed it first). */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}
