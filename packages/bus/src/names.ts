/**
 * Names of the JetStream streams, KV buckets and subjects Stratum uses, in one place so that a
 * prefix (one per test file, sharing a nats-server) isolates all of them at once.
 */

/** A replica id or service name becomes a subject token, so it may hold no `.`, `*`, `>` or space. */
const TOKEN = /^[A-Za-z0-9_-]+$/;

export function assertToken(what: string, value: string): void {
  if (!TOKEN.test(value)) {
    throw new TypeError(`${what} must match ${TOKEN} (it becomes a NATS subject token), got ${JSON.stringify(value)}`);
  }
}

export function streamName(prefix: string, base: string): string {
  return prefix ? `${prefix.toUpperCase()}_${base}` : base;
}

export function subject(prefix: string, ...tokens: string[]): string {
  return [prefix, ...tokens].filter(Boolean).join(".");
}
