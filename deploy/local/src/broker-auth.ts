import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The devstack's one broker tenant, its gRPC bearer token and its OSB platform identity. */
export interface DevBrokerAuth {
  /** The auth file the broker replicas read (STRATUM_BROKER_AUTH_FILE). */
  file: string;
  tenant: string;
  token: string;
  osbUsername: string;
  osbPassword: string;
}

export const DEV_TENANT = "dev";
export const DEV_OSB_USERNAME = "dev";

/**
 * The broker's auth file under the data dir: made once with random secrets and kept, like the
 * data, across restarts, so a token or platform password handed to a tool (stratumctl, a
 * platform's broker registration) stays valid until `--reset`. Only the file's owner may read it.
 */
export function devBrokerAuth(dataDir: string): DevBrokerAuth {
  const file = join(dataDir, "broker-auth.json");
  if (existsSync(file)) {
    const kept = readKept(file);
    if (kept) return kept;
  }
  const auth: DevBrokerAuth = {
    file,
    tenant: DEV_TENANT,
    token: `dev-${randomBytes(16).toString("hex")}`,
    osbUsername: DEV_OSB_USERNAME,
    osbPassword: randomBytes(12).toString("hex"),
  };
  const content = {
    tokens: [{ token: auth.token, tenant: auth.tenant }],
    platforms: [{ username: auth.osbUsername, password: auth.osbPassword, tenant: auth.tenant }],
  };
  writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  return auth;
}

/** The dev identities of a file written before, or undefined when it is not one of ours (rewritten then). */
function readKept(file: string): DevBrokerAuth | undefined {
  try {
    const raw = JSON.parse(readFileSync(file, "utf8")) as { tokens?: Array<{ token?: unknown; tenant?: unknown }>; platforms?: Array<{ username?: unknown; password?: unknown; tenant?: unknown }> };
    const token = raw.tokens?.find((t) => t.tenant === DEV_TENANT)?.token;
    const platform = raw.platforms?.find((p) => p.tenant === DEV_TENANT);
    if (typeof token !== "string" || typeof platform?.username !== "string" || typeof platform.password !== "string") return undefined;
    return { file, tenant: DEV_TENANT, token, osbUsername: platform.username, osbPassword: platform.password };
  } catch {
    return undefined;
  }
}
