import { execFileSync, spawnSync } from "node:child_process";
import type { RunAs } from "./managed-process";

/** True when this process runs as root, where Postgres refuses to start. */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Looks a user up through NSS (`getent passwd`), so LDAP/sssd users work too. */
export function lookupUser(name: string): RunAs | undefined {
  const res = spawnSync("getent", ["passwd", name], { encoding: "utf8" });
  if (res.status !== 0 || !res.stdout) return undefined;
  const fields = res.stdout.trim().split(":");
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { user: name, uid, gid };
}

function groupExists(name: string): boolean {
  return spawnSync("getent", ["group", name]).status === 0;
}

/**
 * The user to run a server as when we are root: `name`, created as a system user without a home
 * directory when missing (root may do that, and a container or CI machine usually has no such
 * user). Several test workers may race to create it; the loser just looks it up again.
 */
export function ensureSystemUser(name: string): RunAs {
  const existing = lookupUser(name);
  if (existing) return existing;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const groupArgs = groupExists(name) ? ["--gid", name] : ["--user-group"];
      execFileSync("useradd", ["--system", "--no-create-home", ...groupArgs, name], { stdio: "pipe" });
    } catch (e) {
      lastError = e; // exit 9: created meanwhile by another worker; 10: /etc/passwd locked
    }
    const created = lookupUser(name);
    if (created) return created;
    execFileSync("sleep", ["0.2"]);
  }
  const detail = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(
    `cannot run Postgres as root and could not create the system user "${name}" (${detail}); ` +
      `create it with \`useradd --system --no-create-home ${name}\` or run as a non-root user`,
  );
}

/**
 * Whether `user` can reach `path` with the given access (`test -r/-w/-x`). Root passes every
 * permission check itself, so this asks the kernel as that user.
 */
export function userCan(user: RunAs, flags: string, path: string): boolean {
  const args: string[] = [];
  for (const flag of flags) {
    if (args.length > 0) args.push("-a");
    args.push(`-${flag}`, path);
  }
  return spawnSync("test", args, { uid: user.uid, gid: user.gid }).status === 0;
}
