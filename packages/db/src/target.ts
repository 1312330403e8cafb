/**
 * `host:port/database` of a Postgres URL, for messages and logs: never the user or password.
 * Tolerates multi-host URLs (`postgres://a:5432,b:5432/db`) that `new URL` rejects.
 */
export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, "");
    return `${u.hostname}:${u.port || "5432"}${db ? `/${decodeURIComponent(db)}` : ""}`;
  } catch {
    const m = /^[a-z]+:\/\/(?:[^@/]*@)?([^/?]+)(?:\/([^?]*))?/i.exec(url);
    if (!m) return "<unparseable postgres url>";
    return `${m[1]}${m[2] ? `/${m[2]}` : ""}`;
  }
}

/** Where the database lives without the database name: the `host:port` errors must name. */
export function describeHostPort(url: string): string {
  return describeTarget(url).replace(/\/.*$/, "");
}
