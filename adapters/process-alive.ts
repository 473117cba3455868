/**
 * Whether a process with this pid runs: signal 0 tests without sending anything. EPERM means it
 * runs as another user. For the owners of locks and spool folders left by a process.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
