/**
 * `stratumctl host …`: hypervisor hosts. Each command is one HostService RPC; see
 * proto/stratum/compute/v1/host.proto for what the server does.
 */
import { create } from "@bufbuild/protobuf";
import {
  DeleteHostResponseSchema,
  HostSchema,
  HostState,
  HostStateSchema,
  HostStatus,
  HostStatusSchema,
  ListHostsResponseSchema,
  type Host,
} from "@stratum/proto/stratum/compute/v1/host_pb";
import { enumChoices, enumWord } from "../enums";
import { renderFields, renderTable } from "../table";
import { formatSize } from "../units";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Command, type CommandResult } from "./command";

const COLUMNS = ["UUID", "NAME", "STATUS", "STATE", "CPU", "MEMORY", "AGENT URL"];

/** A table row: CPU and memory as used/capacity, which is what placement decisions hinge on. */
function row(h: Host): string[] {
  return [
    h.uuid,
    h.name,
    enumWord(HostStatusSchema, h.status),
    enumWord(HostStateSchema, h.state),
    `${h.cpuUsed}/${h.cpuCapacity}`,
    `${formatSize(h.memoryUsedBytes)}/${formatSize(h.memoryCapacityBytes)}`,
    h.agentUrl,
  ];
}

/** One host as a one-row table: what a mutation prints. */
function hostResult(h: Host | undefined): CommandResult {
  const host = present(h, "host");
  return { json: jsonOf(HostSchema, host), text: renderTable(COLUMNS, [row(host)]) };
}

function hostDetails(h: Host): string {
  return renderFields([
    ["UUID", h.uuid],
    ["Name", h.name],
    ["Agent URL", h.agentUrl],
    ["Status", enumWord(HostStatusSchema, h.status)],
    ["State", enumWord(HostStateSchema, h.state)],
    ["CPU", `${h.cpuUsed} used of ${h.cpuCapacity}`],
    ["Memory", `${formatSize(h.memoryUsedBytes)} used of ${formatSize(h.memoryCapacityBytes)}`],
    ["Last error", h.lastError],
    ["Last seen", formatTime(h.lastSeenTime)],
    ["Created", formatTime(h.createTime)],
  ]);
}

const UUID_ARG = ["UUID"] as const;

const add: Command = {
  group: "host",
  name: "add",
  summary: "register a hypervisor host by its agent URL and connect it",
  description:
    "Registers a host and runs the agent handshake. The host is listed as Connected when its agent answered; " +
    "otherwise the call fails naming the agent URL. With --request-id, repeating the same command returns the first host instead of adding a second.",
  args: [],
  flags: {
    name: { type: "string", value: "NAME", description: "display name (1–128 characters)", required: true },
    "agent-url": { type: "string", value: "URL", description: "base URL of the host's agent, e.g. http://10.0.0.5:7070", required: true },
    cpu: { type: "string", value: "N", description: "virtual CPUs the host offers", required: true },
    memory: { type: "string", value: "SIZE", description: "memory the host offers, e.g. 64GiB", required: true },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first host" },
    uuid: { type: "string", value: "UUID", description: "UUID for the new host (default: the server chooses)" },
  },
  examples: ["stratumctl host add --name kvm-1 --agent-url http://10.0.0.5:7070 --cpu 32 --memory 128GiB"],
  async run({ flags, api }) {
    const request = {
      name: flags.required("name"),
      agentUrl: flags.required("agent-url"),
      cpuCapacity: flags.uint32("cpu", true),
      memoryCapacityBytes: flags.size("memory", true),
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return hostResult((await api.hosts.addHost(request)).host);
  },
};

const STATUS_CHOICES = enumChoices<HostStatus>(HostStatusSchema);

const list: Command = {
  group: "host",
  name: "list",
  summary: "list hosts",
  description: "Lists hosts in the order they were added, one page at a time unless --all is given.",
  args: [],
  flags: {
    status: { type: "string", value: "STATUS", description: `only hosts with this connection status: ${[...STATUS_CHOICES.keys()].join(", ")}` },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl host list", "stratumctl host list --status disconnected --json"],
  async run({ flags, api }) {
    const status = flags.choice("status", STATUS_CHOICES) ?? HostStatus.UNSPECIFIED;
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.hosts.listHosts({ status, ...page });
      return { items: res.hosts, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListHostsResponseSchema, create(ListHostsResponseSchema, { hosts: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "hosts", command: "host list" });
  },
};

const get: Command = {
  group: "host",
  name: "get",
  summary: "show one host",
  description: "Shows a host in detail, including the last handshake or ping error and when its agent last answered.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const host = present((await api.hosts.getHost({ uuid: args[0]! })).host, "host");
    return { json: jsonOf(HostSchema, host), text: hostDetails(host) };
  },
};

const reconnect: Command = {
  group: "host",
  name: "reconnect",
  summary: "run the agent handshake again now",
  description: "Reconnects a host at once instead of waiting for the next ping, e.g. after its agent was restarted.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    return hostResult((await api.hosts.reconnectHost({ uuid: args[0]! })).host);
  },
};

/** `enable`, `disable` and `maintenance` are one RPC (ChangeHostState) with different states. */
function stateCommand(name: string, state: HostState, summary: string, description: string): Command {
  return {
    group: "host",
    name,
    summary,
    description,
    args: UUID_ARG,
    flags: {},
    async run({ args, api }) {
      return hostResult((await api.hosts.changeHostState({ uuid: args[0]!, state })).host);
    },
  };
}

const remove: Command = {
  group: "host",
  name: "delete",
  summary: "remove a host (refused while VMs are on it)",
  description: "Removes a host from compute. The server refuses while VMs are placed on it: destroy or move them first.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const res = await api.hosts.deleteHost({ uuid: args[0]! });
    return { json: jsonOf(DeleteHostResponseSchema, res), text: `host ${args[0]!} deleted\n` };
  },
};

export const HOST_COMMANDS: readonly Command[] = [
  add,
  list,
  get,
  reconnect,
  stateCommand("enable", HostState.ENABLED, "let a host receive new VMs", "Enables a host: it receives new VMs again."),
  stateCommand("disable", HostState.DISABLED, "stop placing new VMs on a host", "Disables a host: its VMs keep running, no new VMs are placed on it."),
  stateCommand("maintenance", HostState.MAINTENANCE, "put a host in maintenance", "Puts a host in maintenance: it receives no new VMs while it is being serviced."),
  remove,
];
