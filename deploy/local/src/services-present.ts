import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * The domain services, in start order: later ones may call earlier ones. network comes after
 * compute because its EIP syncs, reconciles and audits ask compute where VMs run and how to reach
 * their hosts; compute calls network only for a VM's NIC addresses and EIPs, which no VM needs
 * before the devstack is ready (creates come after), and which compute retries from its durable
 * marks when a restart with kept data reconnects the hosts before network is up.
 */
export const SERVICE_ORDER = ["compute", "network", "storage", "longjob", "broker"] as const;

/** Services of SERVICE_ORDER that exist in this checkout (have `src/main.ts`), so the devstack grows with the repo. */
export function presentServices(repoRoot: string): string[] {
  const dirs = new Set(readdirSync(join(repoRoot, "services")));
  return SERVICE_ORDER.filter((name) => dirs.has(name) && existsSync(join(repoRoot, "services", name, "src", "main.ts")));
}
