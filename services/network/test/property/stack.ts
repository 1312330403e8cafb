import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { kill9, startChildReplica } from "@stratum/runtime/testing";
import type postgres from "postgres";
import { startNetworkStack, type NetworkStack, type TestVm } from "../stack";

const NETWORK_MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
/** VMs of the pool: three, one per host to start with; schedules move them around. */
const POOL = 3;

export interface PropertyStack extends NetworkStack {
  /** The pool of VMs every schedule works on (each with one NIC on the private network). */
  pool: TestVm[];
  /** The database all services share (each in its own schema): what the invariants read. */
  sql: postgres.Sql;
  /** An EIP uuid the child network replica owns on the ring now. */
  ownedByChild(): string;
  /** Kills the child network replica (kill -9): its syncs are left mid-flight for replica 0. */
  crashChild(): Promise<void>;
  /** True once a crash left no child. */
  childDead(): boolean;
  /** After a crash: once the dead child left the membership, a new child joins under a new id. */
  replaceChild(): Promise<void>;
}

/**
 * The network stack (longjob, compute, storage, agent-sim, network) with a second network
 * replica as a child process — the one a schedule may kill — compute pinging its hosts every
 * 200 ms (so an agent restart is noticed and its host reconciled at once), and a pool of VMs.
 */
export async function startPropertyStack(): Promise<PropertyStack> {
  const s = await startNetworkStack({ hosts: 3, networkReplicas: 1, pingIntervalMs: 200 });
  const view = s.network.replicas[0]!.ctx.view;
  let child: { id: string; process: ChildProcess } | undefined;
  let dead = false;
  let generation = 0;
  const startChild = async () => {
    const id = `network-child-${++generation}`;
    const { child: process } = await startChildReplica({ main: NETWORK_MAIN, like: s.network.replicas[0]!.ctx.config, replicaId: id, env: { STRATUM_EIP_COLLECT_INTERVAL_MS: "200" } });
    await view.until((v) => v.members("network").some((m) => m.replicaId === id));
    child = { id, process };
    dead = false;
  };
  const stop = async () => {
    if (child && !dead) await kill9(child.process);
    await s.stop();
  };
  try {
    await startChild();
    const pool: TestVm[] = [];
    for (let i = 0; i < POOL; i++) pool.push(await s.vm(i));
    return {
      ...s,
      pool,
      sql: s.network.replicas[0]!.ctx.db.sql,
      ownedByChild() {
        for (;;) {
          const uuid = randomUUID();
          if (view.ownerOf("network", uuid)?.replicaId === child!.id) return uuid;
        }
      },
      async crashChild() {
        if (dead) return;
        dead = true;
        await kill9(child!.process);
      },
      childDead: () => dead,
      async replaceChild() {
        const gone = child!.id;
        await view.until((v) => !v.members("network").some((m) => m.replicaId === gone));
        await startChild();
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** VM states an operation is still working in. */
export const TRANSIENT: ReadonlySet<VmState> = new Set([VmState.STARTING, VmState.STOPPING, VmState.REBOOTING, VmState.DESTROYING, VmState.MIGRATING, VmState.CREATED]);
