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
