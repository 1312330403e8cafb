import type { Hold } from "@stratum/agent-sim";
import { errorMessage, StratumError, Code } from "@stratum/core";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { violations, type Snapshot } from "./invariants";
import type { Schedule, Step } from "./schedule";
import { TRANSIENT, type PropertyStack } from "./stack";

/** What one schedule did and what broke. */
export interface Report {
  violations: string[];
  log: string[];
}

/** How long the stack may take to settle after a schedule's last step. */
const SETTLE_MS = 20_000;
/** How long a `releaseHeld` waits for a held request to arrive. */
const ARRIVAL_MS = 300;
const FINAL_JOBS = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);
/**
 * A step's RPC deadline. Steps race what earlier ones left running: an attach queued behind a
 * held apply of the same EIP would answer only once that ends, and the schedule goes on without
 * it (the call still runs on the server, as a caller that gave up leaves it).
 */
const STEP = { timeoutMs: 2_000 };

/**
 * Runs one schedule on the pool: creates its EIPs, runs its steps in order (each answers when its
 * RPC does), then lets everything go (holds released, faults cleared, agents up, a crashed child
 * replaced), waits for the stack to settle and checks the invariants — re-checking until they
 * hold or the settle time is up, since what settles is asynchronous. Its EIPs are deleted at the
 * end, so the next schedule starts from the pool alone.
 */
export async function runSchedule(st: PropertyStack, schedule: Schedule): Promise<Report> {
  const log: string[] = [];
  const say = (line: string) => log.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  const eips: string[] = [];
  for (let i = 0; i < schedule.eips; i++) {
    const uuid = i === 0 && !st.childDead() ? st.ownedByChild() : undefined;
    const { eip } = await st.eips.createEip({ name: `p-${i}`, l3NetworkUuid: st.publicL3, ...(uuid ? { uuid } : {}) });
    eips.push(eip!.uuid);
  }
  say(`eips ${eips.join(", ")}`);
  const holds: Hold[] = [];
  const jobs: string[] = [];
  const ctx: Ctx = { st, eips, holds, jobs, say };
  for (const [i, step] of schedule.steps.entries()) {
    try {
      await runStep(ctx, step);
    } catch (e) {
      say(`step ${i} ${step.op}: ${errorMessage(e)}`);
    }
  }
  say("settling");
  for (const h of holds) h.cancel();
  for (const h of st.base.sim.hosts) {
    h.clearFaults();
    if (!h.listening) await h.start();
  }
  if (st.childDead()) {
    await st.replaceChild();
    say("child replaced");
  }
  for (const job of jobs) {
    try {
      await st.base.untilJob(job, (j) => FINAL_JOBS.has(j.state), "its end");
    } catch (e) {
      say(`migration ${job}: ${errorMessage(e)}`);
    }
  }
  const report = await settle(st, say);
  for (const uuid of eips) {
    try {
      await st.eips.deleteEip({ uuid });
      await st.untilEip(uuid, () => false, "gone", 10_000).catch((e: unknown) => {
        if (!(e instanceof StratumError && e.code === Code.NOT_FOUND)) throw e;
      });
    } catch (e) {
      report.violations.push(`eip ${uuid} could not be deleted after the schedule: ${errorMessage(e)}`);
    }
  }
  return { violations: report.violations, log };
}

interface Ctx {
  st: PropertyStack;
  eips: string[];
  holds: Hold[];
  jobs: string[];
  say: (line: string) => void;
}

async function runStep(c: Ctx, step: Step): Promise<void> {
  const { st } = c;
  const vmOf = (i: number) => st.pool[i % st.pool.length]!;
  const eipOf = (i: number) => c.eips[i % c.eips.length]!;
  const hostOf = (i: number) => st.base.sim.hosts[i % st.base.sim.hosts.length]!;
  switch (step.op) {
    case "attach": {
      const vm = vmOf(step.vm);
      const { eip } = await st.eips.attachEip({ uuid: eipOf(step.eip), vmNicUuid: vm.nicUuid }, STEP);
      c.say(`attach ${eip!.uuid} → ${vm.uuid}: ${eip!.status}`);
      return;
    }
    case "detach":
      await st.eips.detachEip({ uuid: eipOf(step.eip) }, STEP);
      c.say(`detach ${eipOf(step.eip)}`);
      return;
    case "stop":
      await st.vms.stopVm({ uuid: vmOf(step.vm).uuid }, STEP);
      c.say(`stop ${vmOf(step.vm).uuid}`);
      return;
    case "start":
      await st.vms.startVm({ uuid: vmOf(step.vm).uuid }, STEP);
      c.say(`start ${vmOf(step.vm).uuid}`);
      return;
    case "migrate": {
      const { jobUuid } = await st.vms.migrateVm({ uuid: vmOf(step.vm).uuid, targetHostUuid: hostOf(step.target).uuid }, STEP);
      c.jobs.push(jobUuid);
      c.say(`migrate ${vmOf(step.vm).uuid} → ${hostOf(step.target).uuid}: job ${jobUuid}`);
      return;
    }
    case "changeIp": {
      const vm = vmOf(step.vm);
      const { vm: after } = await st.vms.setVmNicIp({ uuid: vm.uuid, nicUuid: vm.nicUuid }, STEP);
      c.say(`changeIp ${vm.uuid}: ${after!.nics.find((n) => n.uuid === vm.nicUuid)?.ip}`);
      return;
    }
    case "hold":
      c.holds.push(hostOf(step.host).hold(step.command));
      c.say(`hold ${step.command} on ${hostOf(step.host).uuid}`);
      return;
    case "releaseHeld": {
      const hold = c.holds.find((h) => h.active);
      if (!hold) return;
      try {
        const held = await hold.next(ARRIVAL_MS);
        held.release(step.outcome === "http500" ? { kind: "http500" } : undefined);
        c.say(`released ${held.command} on ${held.hostUuid}: ${step.outcome}`);
      } catch {
        hold.cancel();
        c.say("nothing held: hold cancelled");
      }
      return;
    }
    case "fault": {
      const h = hostOf(step.host);
      h.injectFault(step.kind === "reset" ? { command: step.command, kind: "reset", times: 1 } : { command: step.command, kind: "http500", phase: step.kind === "http500-after" ? "after" : "before", times: 1 });
      c.say(`fault ${step.kind} on ${step.command} of ${h.uuid}`);
      return;
    }
    case "agentRestart": {
      const h = hostOf(step.host);
      await h.stop();
      await h.start({ loseEipRules: step.loseRules });
      c.say(`agent of ${h.uuid} restarted${step.loseRules ? ", its rules lost" : ""}`);
      return;
    }
    case "crash":
      await st.crashChild();
      c.say("child network replica killed");
      return;
  }
}

/** Waits until nothing is in flight, then for the invariants to hold (or the time to pass): the last violations. */
async function settle(st: PropertyStack, say: (line: string) => void): Promise<{ violations: string[] }> {
  const until = Date.now() + SETTLE_MS;
  let last: string[] = ["never checked"];
  for (;;) {
    const snapshot = await snap(st);
    const busy = [...snapshot.vms.values()].filter((v) => TRANSIENT.has(v.state)).map((v) => v.uuid);
    last = busy.length > 0 ? [`VMs still transient: ${busy.join(", ")}`] : violations(snapshot);
    if (last.length === 0) return { violations: [] };
    if (Date.now() > until) {
      say(`not settled after ${SETTLE_MS} ms`);
      return { violations: last };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function snap(st: PropertyStack): Promise<Snapshot> {
  const vms = new Map<string, Vm>();
  for (const v of st.pool) vms.set(v.uuid, (await st.vms.getVm({ uuid: v.uuid })).vm!);
  const [eips, addresses, beliefs] = await Promise.all([
    st.sql`SELECT uuid, vip_ip, vip_uuid, vm_nic_uuid, vm_uuid, guest_ip, status, host_uuid, deleting, sync_gen, synced_gen, status_reason FROM network.eips`,
    st.sql`SELECT l3_network_uuid, ip, holder_kind, holder_uuid, vm_uuid FROM network.ip_addresses`,
    st.sql`SELECT eip_uuid, host_uuid, vip_ip, guest_ip, vm_nic_uuid, state FROM network.eip_rules`,
  ]);
  return { vms, eips: eips as unknown as Snapshot["eips"], addresses: addresses as unknown as Snapshot["addresses"], beliefs: beliefs as unknown as Snapshot["beliefs"], agents: st.rules() };
}
