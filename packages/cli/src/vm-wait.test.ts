import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { VmSchema, VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Code, StratumError } from "@stratum/core";
import type { OpenStream } from "./follow";
import { waitForVm, type VmOperation, type WaitForVmOptions } from "./vm-wait";

const UUID = "22222222-2222-4222-8222-222222222222";

function vm(revision: number, state: VmState, lastError = ""): Vm {
  return create(VmSchema, { uuid: UUID, name: "web-1", revision: BigInt(revision), state, lastError });
}

/**
 * A WatchVm function playing one script per opened stream: its VMs in order, then `"end"`, an
 * error, or `"hang"` (open until the watch's signal aborts). A clock second passes before each.
 */
function scripted(...streams: Array<{ vms: Vm[]; then: "end" | "hang" | Error }>): { watch: OpenStream<Vm>; opened: () => number } {
  let opened = 0;
  const watch: OpenStream<Vm> = (signal) =>
    (async function* () {
      const script = streams[opened++];
      if (!script) throw new Error("the test opened more streams than it scripted");
      for (const v of script.vms) {
        clock.t += 1_000;
        yield v;
      }
      if (script.then === "hang") {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        throw new StratumError(Code.CANCELLED, "cancelled");
      }
      if (script.then instanceof Error) throw script.then;
    })();
  return { watch, opened: () => opened };
}

const clock = { t: 0, now: () => clock.t };

function capture(tty = false, onWrite?: (text: string) => void) {
  const out = {
    text: "",
    isTTY: tty,
    write(s: string) {
      out.text += s;
      onWrite?.(out.text);
    },
  };
  return out;
}

async function wait(operation: VmOperation, accepted: Vm, watch: OpenStream<Vm>, out: ReturnType<typeof capture>, more: Partial<WaitForVmOptions> = {}) {
  clock.t = 0;
  const sleeps: number[] = [];
  const outcome = await waitForVm({
    operation,
    accepted,
    watch,
    out,
    now: clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...more,
  });
  return { ...outcome, sleeps };
}

describe("waitForVm off a terminal", () => {
  it("shows the accepted VM, then each change, and exits 0 when a create reaches Running", async () => {
    // The stream starts with the VM as it is: the accepted revision again, which is not repeated.
    const { watch } = scripted({ vms: [vm(1, VmState.CREATED), vm(2, VmState.STARTING), vm(3, VmState.RUNNING)], then: "hang" });
    const out = capture();
    const res = await wait("create", vm(1, VmState.CREATED), watch, out);
    expect(res.code).toBe(0);
    expect(res.last?.state).toBe(VmState.RUNNING);
    expect(out.text).toBe("Created  0:00\nStarting  0:02\n" + `vm ${UUID} Running (waited 0:03)\n`);
  });

  it.each<[VmOperation, VmState, Vm[], string]>([
    ["create", VmState.CREATED, [vm(2, VmState.STARTING), vm(3, VmState.ERROR, "host h1: vm/start: libvirt: out of disk")], "Error (waited 0:02): the create failed: host h1: vm/start: libvirt: out of disk"],
    ["start", VmState.STARTING, [vm(2, VmState.STOPPED, "host h1: vm/start: no memory")], "Stopped (waited 0:01): the start failed: host h1: vm/start: no memory"],
    ["stop", VmState.STOPPING, [vm(2, VmState.RUNNING, "host h1: vm/stop: guest did not shut down")], "Running (waited 0:01): the stop failed: host h1: vm/stop: guest did not shut down"],
    // A failed reboot ends where a good one does, Running: only last_error tells them apart.
    ["reboot", VmState.REBOOTING, [vm(2, VmState.RUNNING, "host h1: vm/reboot: timed out")], "Running (waited 0:01): the reboot failed: host h1: vm/reboot: timed out"],
    ["destroy", VmState.DESTROYING, [vm(2, VmState.STOPPED, "host h1: vm/destroy: busy")], "Stopped (waited 0:01): the destroy failed: host h1: vm/destroy: busy"],
    // Someone else moved it before this watch saw the outcome: no error to print, but not the outcome asked for.
    ["start", VmState.STARTING, [vm(5, VmState.DESTROYED)], "Destroyed (waited 0:01): the start failed, not Running"],
  ])("exits 1 when a %s settles elsewhere or with last_error, saying why", async (operation, transient, stream, line) => {
    const { watch } = scripted({ vms: stream, then: "hang" });
    const out = capture();
    const res = await wait(operation, vm(1, transient), watch, out);
    expect(res.code).toBe(1);
    expect(out.text.trimEnd().split("\n").pop()).toBe(`vm ${UUID} ${line}`);
  });

  it.each<[VmOperation, VmState, VmState]>([
    ["start", VmState.STARTING, VmState.RUNNING],
    ["stop", VmState.STOPPING, VmState.STOPPED],
    ["reboot", VmState.REBOOTING, VmState.RUNNING],
    ["destroy", VmState.DESTROYING, VmState.DESTROYED],
  ])("exits 0 when a %s reaches its state with no error, though the transient VM carried an old one", async (operation, transient, target) => {
    const { watch } = scripted({ vms: [vm(2, target)], then: "end" });
    const out = capture();
    const res = await wait(operation, vm(1, transient, "an earlier stop failed"), watch, out);
    expect(res.code).toBe(0);
    expect(out.text.trimEnd().split("\n").pop()).toMatch(new RegExp(`^vm ${UUID} \\w+ \\(waited 0:01\\)$`));
  });

  it("opens no stream when the answer already is the outcome (a destroyed VM destroyed again)", async () => {
    const { watch, opened } = scripted();
    const out = capture();
    const res = await wait("destroy", vm(9, VmState.DESTROYED), watch, out);
    expect(res.code).toBe(0);
    expect(opened()).toBe(0);
    expect(out.text).toBe(`vm ${UUID} Destroyed (waited 0:00)\n`);
  });

  it.each([
    ["UNAVAILABLE", Code.UNAVAILABLE],
    ["CANCELLED", Code.CANCELLED],
  ])("re-opens a watch broken with %s and skips the revisions it already showed", async (_name, code) => {
    const { watch, opened } = scripted(
      { vms: [vm(2, VmState.STARTING)], then: new StratumError(code, "replica went away") },
      { vms: [vm(2, VmState.STARTING)], then: "end" },
      { vms: [vm(2, VmState.STARTING), vm(3, VmState.RUNNING)], then: "hang" },
    );
    const out = capture();
    const res = await wait("create", vm(1, VmState.CREATED), watch, out);
    expect(res.code).toBe(0);
    expect(opened()).toBe(3);
    expect(res.sleeps).toEqual([250, 250]);
    expect(out.text).toBe("Created  0:00\nStarting  0:01\n" + `vm ${UUID} Running (waited 0:04)\n`);
  });

  it("gives up after repeated breaks, saying the operation goes on", async () => {
    const broken = () => ({ vms: [], then: new StratumError(Code.UNAVAILABLE, "no replica") });
    const { watch, opened } = scripted(broken(), broken());
    const out = capture();
    await expect(wait("stop", vm(1, VmState.STOPPING), watch, out, { maxReconnects: 1 })).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    expect(opened()).toBe(2);
    expect(out.text).toBe(`Stopping  0:00\nstopped waiting: the watch of vm ${UUID} kept breaking; the stop goes on: see where it is with 'stratumctl vm get ${UUID}'\n`);
  });

  it("does not re-open a watch refused for another reason", async () => {
    const { watch, opened } = scripted({ vms: [], then: new StratumError(Code.NOT_FOUND, `vm ${UUID} not found`) });
    await expect(wait("start", vm(1, VmState.STARTING), watch, capture())).rejects.toMatchObject({ code: Code.NOT_FOUND });
    expect(opened()).toBe(1);
  });

  it("stops waiting on Ctrl-C (130) and says the operation goes on", async () => {
    const { watch } = scripted({ vms: [vm(2, VmState.STARTING)], then: "hang" });
    const ctrlC = new AbortController();
    const out = capture(false, (text) => {
      if (text.includes("Starting")) ctrlC.abort();
    });
    const res = await wait("create", vm(1, VmState.CREATED), watch, out, { signal: ctrlC.signal });
    expect(res.code).toBe(130);
    expect(out.text).toBe(`Created  0:00\nStarting  0:01\nstopped waiting; the create of vm ${UUID} goes on (Starting): see where it is with 'stratumctl vm get ${UUID}'\n`);
  });
});

describe("waitForVm on a terminal", () => {
  it("redraws one state line, no bar, and ends with the outcome on its own line", async () => {
    const { watch } = scripted({ vms: [vm(2, VmState.RUNNING)], then: "hang" });
    const out = capture(true);
    const res = await wait("reboot", vm(1, VmState.REBOOTING), watch, out, { tty: true });
    expect(res.code).toBe(0);
    expect(out.text).toBe(`\rRebooting  0:00\u001b[K\rvm ${UUID} Running (waited 0:01)\u001b[K\n`);
  });
});
