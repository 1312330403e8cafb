/**
 * The few log lines the db layer writes (connection retries, migrations). Structural, so a
 * service passes its own structured logger; the default writes one JSON object per line to
 * stderr, which is what the devstack and the cluster's log collectors read.
 */
export interface DbLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function line(level: string, msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level, component: "db", msg, ...fields })}\n`);
}

/** Default logger: JSON lines on stderr. */
export const jsonLineLogger: DbLogger = {
  info: (msg, fields) => line("info", msg, fields),
  warn: (msg, fields) => line("warn", msg, fields),
  error: (msg, fields) => line("error", msg, fields),
};

/** A short description of anything thrown, for log fields and messages (never a stack). */
export function describeError(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return e.errors.map(describeError).join("; ");
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === "string" && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}
