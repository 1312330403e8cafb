import type { DbHandle } from "@stratum/db";
import type { tables } from "./schema";

/** The longjob service's database handle, typed with its tables. */
export type LongjobDb = DbHandle<typeof tables>;
