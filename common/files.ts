/** File-system steps that several stores share. */
import { closeSync, fsyncSync, openSync } from "node:fs";

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
