/**
 * The variable naming the step at which a replica kills itself with SIGKILL: how a test forces a
 * crash at an exact point of a flow (between two writes, say) instead of hoping a `kill -9` from
 * outside lands there. Unset (always, outside such tests), a crash point costs one comparison.
 */
export const CRASH_POINT_ENV = "STRATUM_CRASH_POINT";

/** Dies here, as `kill -9` would, when `STRATUM_CRASH_POINT` names this step. */
export function crashPoint(step: string): void {
  if (process.env[CRASH_POINT_ENV] === step) process.kill(process.pid, "SIGKILL");
}
