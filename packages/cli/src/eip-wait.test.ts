import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import { EipSchema, EipStatus, type Eip } from "@stratum/proto/stratum/network/v1/eip_pb";
import { waitForEip, type EipOperation, type WaitForEipOptions } from "./eip-wait";

const UUID = "33333333-3333-4333-8333-333333333333";
const HOST = "44444444-4444-4444-8444-444444444444";
const VM = "55555555-5555-4555-8555-555555555555";

function eip(revision: number, status: EipStatus, statusReason = ""): Eip {
  return create(EipSchema, { uuid: UUID, name: "web", vipIp: "172.20.0.10", guestIp: "10.0.0.12", vmUuid: VM, hostUuid: status === EipStatus.ACTIVE ? HOST : "", revision: BigInt(revision), status, statusReason });
}

/** What each poll answers, in order: an EIP, "gone" (NOT_FOUND) or an error; the last one repeats. */
type Answer = Eip | "gone" | Error;

const clock = { t: 0, now: () => clock.t };

function capture() {
  const out = {
    text: "",
    isTTY: false,
    write(s: string) {
      out.text += s;
    },
  };
  return out;
}

async function wait(operation: EipOperation, accepted: Eip | undefined, answers: Answer[], more: Partial<WaitForEipOptions> = {}) {
  clock.t = 0;
  const out = capture();
  const sleeps: number[] = [];
  let polls = 0;
  const outcome = await waitForEip({
    operation,
    uuid: UUID,
    accepted,
    timeoutMs: 60_000,
    out,
    now: clock.now,
    // The clock moves by exactly what the waiter sleeps: no real time passes.
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.t += ms;
    },
    get: async () => {
      const answer = answers[Math.min(polls++, answers.length - 1)]!;
      if (answer === "gone") return undefined;
      if (answer instanceof Error) throw answer;
      return answer;
    },
    ...more,
  });
  return { outcome, out: out.text, sleeps, polls };
}

describe("eip --wait", () => {
  it("attach: polls until Active, printing each status once, exit 0", async () => {
    const { outcome, out, polls } = await wait("attach", eip(2, EipStatus.APPLYING), [eip(2, EipStatus.APPLYING), eip(2, EipStatus.APPLYING), eip(3, EipStatus.ACTIVE)]);
    expect(outcome.code).toBe(0);
    expect(outcome.last?.status).toBe(EipStatus.ACTIVE);
    expect(polls).toBe(3);
    expect(out).toBe(`Applying  0:00\neip ${UUID} Active (waited 0:00) on host ${HOST}, 172.20.0.10 → 10.0.0.12\n`);
  });

  it("attach to a VM that does not run ends Down, exit 0, without a poll when the answer is settled", async () => {
    const { outcome, out, polls } = await wait("attach", eip(2, EipStatus.DOWN), []);
    expect({ code: outcome.code, polls }).toEqual({ code: 0, polls: 0 });
    expect(out).toBe(`eip ${UUID} Down (waited 0:00): 172.20.0.10 → 10.0.0.12 of vm ${VM}, which is not running\n`);
  });

  it("keeps waiting through Error, showing its reason, until network's retry succeeds", async () => {
    const reason = "host 4444… eip/apply: agent answered 500";
    const { outcome, out } = await wait("attach", eip(2, EipStatus.APPLYING), [eip(3, EipStatus.ERROR, reason), eip(3, EipStatus.ERROR, reason), eip(4, EipStatus.APPLYING), eip(5, EipStatus.ACTIVE)]);
    expect(outcome.code).toBe(0);
    expect(out.split("\n").slice(0, 3)).toEqual(["Applying  0:00", `Error  0:00  ${reason}`, "Applying  0:00"]);
  });

  it("attach whose apply failed and was rolled back (Detached) is exit 1 with the reason", async () => {
    const { outcome, out } = await wait("attach", eip(2, EipStatus.APPLYING), [eip(3, EipStatus.DETACHED, "eip/apply on host h: 500 boom")]);
    expect(outcome.code).toBe(1);
    expect(out).toMatch(new RegExp(`\neip ${UUID} Detached \\(waited 0:00\\): the attach failed: eip/apply on host h: 500 boom\n$`));
  });

  it("detach: Releasing, then Detached, exit 0; bound again instead is exit 1", async () => {
    expect((await wait("detach", eip(4, EipStatus.RELEASING), [eip(5, EipStatus.DETACHED)])).outcome.code).toBe(0);
    const again = await wait("detach", eip(4, EipStatus.RELEASING), [eip(6, EipStatus.ACTIVE)]);
    expect(again.outcome.code).toBe(1);
    expect(again.out).toMatch(/Active \(waited 0:00\): the detach failed, not Detached\n$/);
  });

  it("delete: waits through Deleting (and a settled status) until GetEip is NOT_FOUND", async () => {
    const { outcome, out, polls } = await wait("delete", eip(5, EipStatus.DELETING), [eip(5, EipStatus.DELETING), eip(6, EipStatus.DETACHED), "gone"]);
    expect({ code: outcome.code, last: outcome.last, polls }).toEqual({ code: 0, last: undefined, polls: 3 });
    expect(out).toBe(`Deleting  0:00\nDetached  0:00\neip ${UUID} deleted (waited 0:00)\n`);
    // A delete that answered the EIP gone needs no poll.
    expect((await wait("delete", undefined, [])).polls).toBe(0);
  });

  it("backs off from 100 ms to 1 s while nothing changes, and back to 100 ms on a change", async () => {
    const applying = eip(2, EipStatus.APPLYING);
    const { sleeps } = await wait("attach", applying, [applying, applying, applying, applying, applying, eip(3, EipStatus.ERROR, "x"), eip(4, EipStatus.ACTIVE)]);
    expect(sleeps).toEqual([100, 200, 400, 800, 1000, 1000, 100]);
  });

  it("gives up after --wait-timeout, exit 1, saying the attach goes on", async () => {
    const { outcome, out } = await wait("attach", eip(2, EipStatus.APPLYING), [eip(3, EipStatus.ERROR, "agent unreachable")], { timeoutMs: 5_000 });
    expect(outcome.code).toBe(1);
    expect(clock.t).toBe(5_000);
    expect(out).toMatch(new RegExp(`\ngave up waiting after 0:05 \\(--wait-timeout\\): eip ${UUID} is still Error: agent unreachable; the attach goes on: see where it is with 'stratumctl eip get ${UUID}'\n$`));
  });

  it("polls again when network is unreachable, and throws any other failure", async () => {
    const down = new StratumError(Code.UNAVAILABLE, "no network replica");
    expect((await wait("attach", eip(2, EipStatus.APPLYING), [down, down, eip(3, EipStatus.ACTIVE)])).outcome.code).toBe(0);
    await expect(wait("attach", eip(2, EipStatus.APPLYING), [new StratumError(Code.PERMISSION_DENIED, "no")])).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    // The EIP deleted by someone else while an attach is waited for: exit 1, saying so.
    const gone = await wait("attach", eip(2, EipStatus.APPLYING), ["gone"]);
    expect(gone.outcome.code).toBe(1);
    expect(gone.out).toMatch(/is gone \(waited 0:00\): deleted meanwhile\n$/);
  });

  it("Ctrl-C stops waiting with 130; the detach goes on", async () => {
    const interrupt = new AbortController();
    const releasing = eip(4, EipStatus.RELEASING);
    const { outcome, out } = await wait("detach", releasing, [releasing], {
      signal: interrupt.signal,
      sleep: async (ms) => {
        clock.t += ms;
        if (clock.t >= 300) interrupt.abort();
      },
    });
    expect(outcome.code).toBe(130);
    expect(out).toMatch(new RegExp(`\nstopped waiting; the detach of eip ${UUID} goes on \\(Releasing\\): see where it is with 'stratumctl eip get ${UUID}'\n$`));
  });
});
