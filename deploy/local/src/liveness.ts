import type { ExitStatus } from "./supervisor";

/**
 * Resolves once process `pid` is gone, checked every `intervalMs` with signal 0. For the servers
 * `@stratum/testing` starts (nats-server, postgres): it keeps their ChildProcess to itself and
 * exposes only the pid, so their exit status is not known here, only that they are gone. (A pid
 * reused by another process within one interval would hide a death; at one check per 500 ms on a
 * dev machine that is not worth more machinery.)
 */
export function goneAt(pid: number, intervalMs = 500): Promise<ExitStatus> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (alive(pid)) return;
      clearInterval(timer);
      resolve({ code: null, signal: null });
    }, intervalMs);
    // The devstack's children keep it alive, not its probes.
    timer.unref();
  });
}

/** True while a process with `pid` exists, also one of another user (postgres when we are root). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but runs as another user (postgres when we are root).
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
