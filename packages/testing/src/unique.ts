import { randomUUID } from "node:crypto";

const LABEL = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * A prefix unique to one test file or case, for names on a shared server: JetStream stream and
 * KV bucket names and subject tokens. It holds only `[A-Za-z0-9_-]` (valid in all three: no `.`,
 * `*`, `>` or spaces) and starts with a letter, e.g. `t3f9c2a1b7e`.
 */
export function uniquePrefix(label = "t"): string {
  if (!LABEL.test(label)) throw new TypeError(`prefix label must match ${LABEL}, got ${JSON.stringify(label)}`);
  return `${label}${randomUUID().replaceAll("-", "").slice(0, 10)}`;
}
