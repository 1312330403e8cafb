import type { DbHandle } from "@stratum/db";
import type { tables } from "./schema";

/** The storage service's database handle, typed with its tables. */
export type StorageDb = DbHandle<typeof tables>;
