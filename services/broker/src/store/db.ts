import type { DbHandle } from "@stratum/db";
import type { tables } from "./schema";

/** The broker's database handle, typed with its tables. */
export type BrokerDb = DbHandle<typeof tables>;
