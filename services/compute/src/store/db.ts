import type { DbHandle } from "@stratum/db";
import type { tables } from "./schema";

/** The compute service's database handle, typed with its tables. */
export type ComputeDb = DbHandle<typeof tables>;
