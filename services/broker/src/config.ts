import { fileURLToPath } from "node:url";
import { envInt, envString } from "@stratum/runtime";

/** The committed catalog (services, plans, parameter schemas). */
export const DEFAULT_CATALOG_FILE = fileURLToPath(new URL("../catalog.json", import.meta.url));
/** Where the devstack's OSB facade listens by default (0: any free port). */
export const DEFAULT_OSB_PORT = 0;

/** The broker's own variables, read and checked with the runtime's. */
export const BROKER_ENV = {
  STRATUM_BROKER_CATALOG_FILE: envString("the catalog of services and plans (JSON, OSB's shape with each plan's VM size)", DEFAULT_CATALOG_FILE),
  STRATUM_BROKER_AUTH_FILE: envString("bearer tokens and OSB platform credentials, each mapped to a tenant (JSON); unset: every call is refused", ""),
  STRATUM_BROKER_OSB_PORT: envInt("port of the Open Service Broker API (HTTP) beside the gRPC server; 0: any free port", DEFAULT_OSB_PORT, 0, 65_535),
  STRATUM_BROKER_NETWORK: envString("the L3 network (name or UUID) instances get their NIC on", "devstack-private"),
  STRATUM_BROKER_PUBLIC_NETWORK: envString("the public L3 network (name or UUID) instances' elastic IPs come from", "devstack-public"),
  STRATUM_BROKER_SWEEP_INTERVAL_MS: envInt("period of the sweep that submits operations a dead replica recorded but did not submit (default 2000)", 2_000, 50, 600_000),
};
