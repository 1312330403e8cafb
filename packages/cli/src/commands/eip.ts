/**
 * `stratumctl eip …`: elastic IPs, on the network service (EipService; see
 * proto/stratum/network/v1/eip.proto). An EIP is a VIP of a public network bound to a VM NIC's
 * address, applied as a NAT rule on the agent of the host where the VM runs. Its status is what
 * the agents have, as observed: Applying, Active, Down (the VM does not run), Releasing, Error
 * (with its reason; network retries), Detached, Deleting.
 *
 * attach, detach and delete answer once network has recorded the change; the agent work follows.
 * With `--wait` they poll GetEip until the status settles (eip-wait.ts), bounded by
 * `--wait-timeout`; with `--wait --json` the progress goes to stderr and stdout gets the EIP as it
 * ended. `eip audit` compares the agents' rules with the database, per host, and changes nothing.
 */
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import {
  AuditEipsResponseSchema,
  DeleteEipResponseSchema,
  EipSchema,
  EipStatus,
  EipStatusSchema,
  ListEipsResponseSchema,
  type Eip,
  type EipRule,
  type HostEipDrift,
} from "@stratum/proto/stratum/network/v1/eip_pb";
import type { FlagSpecs } from "../args";
import { DEFAULT_EIP_WAIT_MS, waitForEip, type EipOperation } from "../eip-wait";
import { enumChoices, enumWord } from "../enums";
import { renderFields, renderTable } from "../table";
import { UsageError } from "../usage-error";
import { EXIT_FAILED, EXIT_OK } from "../writer";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type CommandInput, type Command, type CommandResult } from "./command";

const COLUMNS = ["UUID", "NAME", "VIP", "STATUS", "VM", "GUEST IP"];

function row(e: Eip): string[] {
  return [e.uuid, e.name, e.vipIp, enumWord(EipStatusSchema, e.status), e.vmUuid, e.guestIp];
}

function eipResult(e: Eip | undefined): CommandResult {
  const eip = present(e, "elastic IP");
  return { json: jsonOf(EipSchema, eip), text: renderTable(COLUMNS, [row(eip)]) };
}

const EIP_ARG = ["EIP"] as const;
const STATUS_CHOICES = enumChoices<EipStatus>(EipStatusSchema);

/** `--wait` and `--wait-timeout`, saying what the operation's outcome is. */
function waitFlags(operation: EipOperation, outcome: string): FlagSpecs {
  return {
    wait: { type: "boolean", description: `poll the EIP until the ${operation} settles: exit 0 once ${outcome}, 1 otherwise; an Error status is retried by network, so the wait goes on, showing why (Ctrl-C stops waiting, not the ${operation})` },
    "wait-timeout": { type: "string", value: "SECONDS", description: `give up --wait after this long, exit 1 (default ${DEFAULT_EIP_WAIT_MS / 1000})` },
  };
}

const REQUEST_ID: FlagSpecs = { "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key changes nothing more" } };

/** How long `--wait` may wait, read before any call so a bad value changes nothing. */
function waitTimeout(input: CommandInput, operation: EipOperation): number {
  const timeoutMs = input.flags.seconds("wait-timeout");
  if (timeoutMs !== undefined && !input.flags.bool("wait")) throw new UsageError("--wait-timeout needs --wait", `eip ${operation}`);
  return timeoutMs ?? DEFAULT_EIP_WAIT_MS;
}

/**
 * What an accepted attach, detach or delete prints: the EIP as answered (`gone` when the delete
 * answered it gone), or with --wait as it ended (display on stdout for people, stderr with --json).
 */
async function operationResult(input: CommandInput, operation: EipOperation, uuid: string, timeoutMs: number, answered: Eip | undefined, gone?: () => CommandResult): Promise<CommandResult> {
  const { flags, api, io } = input;
  if (!flags.bool("wait")) return answered || !gone ? eipResult(answered) : gone();
  const outcome = await waitForEip({
    operation,
    uuid,
    accepted: answered,
    timeoutMs,
    get: async (signal) => {
      try {
        return present((await api.eips.getEip({ uuid }, { signal })).eip, "elastic IP");
      } catch (e) {
        if (e instanceof StratumError && e.code === Code.NOT_FOUND) return undefined;
        throw e;
      }
    },
    out: flags.bool("json") ? io.stderr : io.stdout,
    signal: io.signal,
  });
  const json = outcome.last ? jsonOf(EipSchema, outcome.last) : jsonOf(DeleteEipResponseSchema, create(DeleteEipResponseSchema, {}));
  return { json, text: "", exitCode: outcome.code };
}

const createEip: Command = {
  group: "eip",
  service: "network",
  name: "create",
  summary: "create an elastic IP: a VIP on a public network, Detached",
  description:
    "Allocates a VIP on a public network (--vip, or the next free address of its ranges) and creates a Detached elastic IP with it; " +
    "'eip attach' binds it to a VM NIC. With --request-id, repeating the same command returns the first EIP.",
  args: [],
  flags: {
    network: { type: "string", value: "L3", description: "the public L3 network of its VIP (the devstack's is endpoints.json's publicL3Network)", required: true },
    vip: { type: "string", value: "IP", description: "the VIP address wanted (default: the next free one)" },
    name: { type: "string", value: "NAME", description: "display name, 1–128 characters (default: eip- and 8 random hex digits)" },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first EIP" },
    uuid: { type: "string", value: "UUID", description: "UUID for the new EIP (default: the server chooses)" },
  },
  examples: ["stratumctl eip create --network 5c2e…", "stratumctl eip create --network 5c2e… --vip 172.20.0.50 --name web"],
  async run({ flags, api }) {
    const request = {
      name: flags.string("name") ?? `eip-${randomUUID().slice(0, 8)}`,
      l3NetworkUuid: flags.required("network"),
      vipIp: flags.string("vip") ?? "",
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return eipResult((await api.eips.createEip(request)).eip);
  },
};

const attach: Command = {
  group: "eip",
  service: "network",
  name: "attach",
  summary: "bind an elastic IP to a VM NIC, applying its rule on the VM's host",
  description:
    "Binds the EIP to a VM NIC ('vm get' lists a VM's NICs) and applies its NAT rule on the host where the VM runs. " +
    "Answers with the EIP Applying (Down when the VM does not run: the rule follows when it starts). Attaching it again to the same NIC " +
    "changes nothing; to another NIC is refused: detach it first. With --wait, exit 0 once it is Active or Down, 1 if the apply failed " +
    "(the binding is then rolled back: Detached, with the reason).",
  args: EIP_ARG,
  flags: { nic: { type: "string", value: "NIC", description: "the VM NIC to bind it to", required: true }, ...REQUEST_ID, ...waitFlags("attach", "it is Active (or Down: its VM does not run)") },
  examples: ["stratumctl eip attach 3a9f… --nic 7d7d… --wait"],
  async run(input) {
    const { flags, args, api } = input;
    const timeoutMs = waitTimeout(input, "attach");
    const res = await api.eips.attachEip({ uuid: args[0]!, vmNicUuid: flags.required("nic"), clientRequestId: flags.string("request-id") ?? "" });
    return operationResult(input, "attach", args[0]!, timeoutMs, present(res.eip, "elastic IP"));
  },
};

const detach: Command = {
  group: "eip",
  service: "network",
  name: "detach",
  summary: "unbind an elastic IP from its NIC, releasing its rule",
  description: "Removes the EIP's binding and releases its rule on the host that has it. Answers with the EIP Releasing (Detached when no host had it); with --wait, exit 0 once it is Detached.",
  args: EIP_ARG,
  flags: { ...REQUEST_ID, ...waitFlags("detach", "it is Detached") },
  async run(input) {
    const { flags, args, api } = input;
    const timeoutMs = waitTimeout(input, "detach");
    const res = await api.eips.detachEip({ uuid: args[0]!, clientRequestId: flags.string("request-id") ?? "" });
    return operationResult(input, "detach", args[0]!, timeoutMs, present(res.eip, "elastic IP"));
  },
};

const remove: Command = {
  group: "eip",
  service: "network",
  name: "delete",
  summary: "delete an elastic IP (detaching it first) and give its VIP back",
  description:
    "Detaches the EIP (releasing its rule), deletes it and gives its VIP back. Answers with the EIP Deleting while its rule is being " +
    "released, or that it is gone; with --wait, exit 0 once it is gone.",
  args: EIP_ARG,
  flags: { ...REQUEST_ID, ...waitFlags("delete", "it is gone") },
  async run(input) {
    const { flags, args, api } = input;
    const uuid = args[0]!;
    const timeoutMs = waitTimeout(input, "delete");
    const res = await api.eips.deleteEip({ uuid, clientRequestId: flags.string("request-id") ?? "" });
    return operationResult(input, "delete", uuid, timeoutMs, res.eip, () => ({ json: jsonOf(DeleteEipResponseSchema, res), text: `eip ${uuid} deleted\n` }));
  },
};

const list: Command = {
  group: "eip",
  service: "network",
  name: "list",
  summary: "list elastic IPs",
  description: "Lists elastic IPs in creation order, filtered, one page at a time unless --all is given.",
  args: [],
  flags: {
    status: { type: "string", value: "STATUS", description: `only EIPs in this status: ${[...STATUS_CHOICES.keys()].join(", ")}` },
    vm: { type: "string", value: "UUID", description: "only EIPs bound to this VM's NICs" },
    network: { type: "string", value: "L3", description: "only EIPs of this public network" },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl eip list --status error", "stratumctl eip list --vm 0b7c… --json"],
  async run({ flags, api }) {
    const filter = { status: flags.choice("status", STATUS_CHOICES) ?? EipStatus.UNSPECIFIED, vmUuid: flags.string("vm") ?? "", l3NetworkUuid: flags.string("network") ?? "" };
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.eips.listEips({ ...filter, ...page });
      return { items: res.eips, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListEipsResponseSchema, create(ListEipsResponseSchema, { eips: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "elastic IPs", command: "eip list" });
  },
};

const get: Command = {
  group: "eip",
  service: "network",
  name: "get",
  summary: "show one elastic IP, its binding and status",
  description: "Shows an elastic IP in detail: its VIP, what it is bound to, its observed status and, in Error, why.",
  args: EIP_ARG,
  flags: {},
  async run({ args, api }) {
    const e = present((await api.eips.getEip({ uuid: args[0]! })).eip, "elastic IP");
    return {
      json: jsonOf(EipSchema, e),
      text: renderFields([
        ["UUID", e.uuid],
        ["Name", e.name],
        ["Network", e.l3NetworkUuid],
        ["VIP", `${e.vipIp} (${e.vipUuid})`],
        ["Status", enumWord(EipStatusSchema, e.status)],
        ["Reason", e.statusReason],
        ["VM", e.vmUuid],
        ["NIC", e.vmNicUuid],
        ["Guest IP", e.guestIp],
        ["Host", e.hostUuid],
        ["Request ID", e.clientRequestId],
        ["Revision", String(e.revision)],
        ["Created", formatTime(e.createTime)],
        ["Updated", formatTime(e.updateTime)],
      ]),
    };
  },
};

const AUDIT_COLUMNS = ["HOST", "DRIFT", "MISSING", "STALE", "ERROR"];
const RULE_COLUMNS = ["HOST", "DRIFT", "EIP", "VIP", "GUEST IP", "NIC"];

function driftWord(h: HostEipDrift): string {
  if (h.error) return "unknown";
  return h.missing.length + h.stale.length === 0 ? "in sync" : "drifting";
}

const audit: Command = {
  group: "eip",
  service: "network",
  name: "audit",
  summary: "compare the agents' EIP rules with the database, per host",
  description:
    "Asks each host's agent (--host, repeatable; default every connected host) for its EIP rules and reports, per host, the rules the " +
    "database says must be there that the agent lacks (missing) and the ones it has that nobody wants there (stale). Changes nothing. " +
    "Exit 0 when every host is in sync, 1 when one drifts or could not be asked, so a script can alert on it.",
  args: [],
  flags: { host: { type: "string", value: "UUID", repeatable: true, description: "audit this host; repeat for more (default: every connected host)" } },
  examples: ["stratumctl eip audit", "stratumctl eip audit --host 0b7c… --json"],
  async run({ flags, api }) {
    const res = await api.eips.auditEips({ hostUuids: [...flags.strings("host")] });
    const rules = res.hosts.flatMap((h) => [
      ...h.missing.map((r): [string, string, EipRule] => [h.hostUuid, "missing", r]),
      ...h.stale.map((r): [string, string, EipRule] => [h.hostUuid, "stale", r]),
    ]);
    const clean = res.hosts.every((h) => !h.error && h.missing.length === 0 && h.stale.length === 0);
    const hostTable = res.hosts.length === 0 ? "" : renderTable(AUDIT_COLUMNS, res.hosts.map((h) => [h.hostUuid, driftWord(h), String(h.missing.length), String(h.stale.length), h.error]));
    const ruleTable = rules.length === 0 ? "" : `\n${renderTable(RULE_COLUMNS, rules.map(([host, kind, r]) => [host, kind, r.eipUuid, r.vipIp, r.guestIp, r.vmNicUuid]))}`;
    return {
      json: jsonOf(AuditEipsResponseSchema, res),
      text: hostTable + ruleTable,
      notes: res.hosts.length === 0 ? ["no hosts audited (none connected)"] : [],
      exitCode: clean ? EXIT_OK : EXIT_FAILED,
    };
  },
};

export const EIP_COMMANDS: readonly Command[] = [createEip, attach, detach, list, get, remove, audit];
