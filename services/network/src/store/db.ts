import type { DbHandle } from "@stratum/db";
import type { tables } from "./schema";

/** The network service's database handle, typed with its tables. */
export type NetworkDb = DbHandle<typeof tables>;
