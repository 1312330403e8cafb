/**
 * `stratumctl network …`: L3 networks, their IP ranges and the addresses held on them, on the
 * network service (NetworkService; see proto/stratum/network/v1/network.proto). A network is a
 * CIDR with a gateway and DNS servers; a public one is a pool of VIPs for elastic IPs. Addresses
 * come only out of its ranges, one holder each (a VM's NIC or a VIP): `network ips` lists them.
 * The range commands are `network range add|list|delete`, a command name of two words.
 */
import { create } from "@bufbuild/protobuf";
import {
  DeleteIpRangeResponseSchema,
  DeleteL3NetworkResponseSchema,
  IpHolderKindSchema,
  IpRangeSchema,
  L3NetworkSchema,
  ListIpAddressesResponseSchema,
  ListIpRangesResponseSchema,
  ListL3NetworksResponseSchema,
  type IpAddress,
  type IpRange,
  type L3Network,
} from "@stratum/proto/stratum/network/v1/network_pb";
import type { FlagSpecs } from "../args";
import { enumWord } from "../enums";
import { renderFields, renderTable } from "../table";
import { UsageError } from "../usage-error";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Command, type CommandResult } from "./command";

const COLUMNS = ["UUID", "NAME", "CIDR", "GATEWAY", "DNS", "PUBLIC"];

function row(n: L3Network): string[] {
  return [n.uuid, n.name, n.cidr, n.gateway, n.dns.join(","), n.public ? "yes" : "no"];
}

function networkResult(n: L3Network | undefined): CommandResult {
  const network = present(n, "L3 network");
  return { json: jsonOf(L3NetworkSchema, network), text: renderTable(COLUMNS, [row(network)]) };
}

/** 10.0.0.10 → its 32-bit value, for the size of a range; NaN for anything else. */
function ipValue(ip: string): number {
  const parts = ip.split(".").map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) ? parts.reduce((v, p) => v * 256 + p, 0) : NaN;
}

/** How many addresses a range holds, both ends included. */
export function rangeSize(r: IpRange): string {
  const size = ipValue(r.endIp) - ipValue(r.startIp) + 1;
  return Number.isFinite(size) ? String(size) : "";
}

const RANGE_COLUMNS = ["UUID", "NETWORK", "START", "END", "SIZE"];

function rangeRow(r: IpRange): string[] {
  return [r.uuid, r.l3NetworkUuid, r.startIp, r.endIp, rangeSize(r)];
}

const UUID_ARG = ["UUID"] as const;
const NETWORK_ARG = ["NETWORK"] as const;
const REQUEST_ID: FlagSpecs = { "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key changes nothing more" } };

/** `--dns 10.0.0.2,1.1.1.1` as a list; the server checks each is an IPv4 address. */
function dnsList(text: string | undefined): string[] {
  if (text === undefined) return [];
  const servers = text.split(",").map((s) => s.trim());
  if (servers.some((s) => s === "")) throw new UsageError(`invalid --dns "${text}": write the servers comma-separated, e.g. 10.0.0.2,1.1.1.1`, "network create");
  return servers;
}

const createNetwork: Command = {
  group: "network",
  service: "network",
  name: "create",
  summary: "create an L3 network (a CIDR, gateway, DNS; --public for a VIP pool)",
  description:
    "Creates an L3 network. Its addresses are handed out only from the ranges added to it ('network range add'). " +
    "A --public network is a pool of VIPs for elastic IPs ('eip create --network'). " +
    "With --request-id, repeating the same command returns the first network.",
  args: [],
  flags: {
    name: { type: "string", value: "NAME", description: "display name (1–128 characters)", required: true },
    cidr: { type: "string", value: "CIDR", description: "the IPv4 network and prefix length, /8 – /30, e.g. 10.0.0.0/16", required: true },
    gateway: { type: "string", value: "IP", description: "the gateway, inside the CIDR (default: its first address)" },
    dns: { type: "string", value: "IP,IP", description: "DNS servers handed to guests, comma-separated (at most 4)" },
    public: { type: "boolean", description: "a pool of VIPs for elastic IPs" },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first network" },
    uuid: { type: "string", value: "UUID", description: "UUID for the new network (default: the server chooses)" },
  },
  examples: ["stratumctl network create --name private --cidr 10.0.0.0/16 --dns 10.0.0.2", "stratumctl network create --name public --cidr 172.20.0.0/16 --public"],
  async run({ flags, api }) {
    const request = {
      name: flags.required("name"),
      cidr: flags.required("cidr"),
      gateway: flags.string("gateway") ?? "",
      dns: dnsList(flags.string("dns")),
      public: flags.bool("public"),
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return networkResult((await api.networks.createL3Network(request)).l3Network);
  },
};

const list: Command = {
  group: "network",
  service: "network",
  name: "list",
  summary: "list L3 networks",
  description: "Lists L3 networks in creation order, one page at a time unless --all is given.",
  args: [],
  flags: {
    public: { type: "boolean", description: "only public networks (VIP pools)" },
    private: { type: "boolean", description: "only networks that are not public" },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl network list", "stratumctl network list --public --json"],
  async run({ flags, api }) {
    if (flags.bool("public") && flags.bool("private")) throw new UsageError("--public and --private exclude each other", "network list");
    const filter = flags.bool("public") ? { public: true } : flags.bool("private") ? { public: false } : {};
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.networks.listL3Networks({ ...filter, ...page });
      return { items: res.l3Networks, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListL3NetworksResponseSchema, create(ListL3NetworksResponseSchema, { l3Networks: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "L3 networks", command: "network list" });
  },
};

const get: Command = {
  group: "network",
  service: "network",
  name: "get",
  summary: "show one L3 network and its ranges",
  description: "Shows an L3 network in detail, with its IP ranges (--json: the network only; 'network range list' has the ranges).",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const n = present((await api.networks.getL3Network({ uuid: args[0]! })).l3Network, "L3 network");
    const { ipRanges } = await api.networks.listIpRanges({ l3NetworkUuid: n.uuid });
    return {
      json: jsonOf(L3NetworkSchema, n),
      text: renderFields([
        ["UUID", n.uuid],
        ["Name", n.name],
        ["CIDR", n.cidr],
        ["Gateway", n.gateway],
        ["DNS", n.dns.join(", ")],
        ["Public", n.public ? "yes (a VIP pool for elastic IPs)" : "no"],
        ["Ranges", ipRanges.map((r) => `${r.startIp}–${r.endIp} (${rangeSize(r)})`).join(", ")],
        ["Request ID", n.clientRequestId],
        ["Created", formatTime(n.createTime)],
      ]),
    };
  },
};

const remove: Command = {
  group: "network",
  service: "network",
  name: "delete",
  summary: "delete an L3 network none of whose addresses is held",
  description: "Deletes an L3 network and its ranges. Refused while a NIC or a VIP holds one of its addresses ('network ips' lists them).",
  args: UUID_ARG,
  flags: { ...REQUEST_ID },
  async run({ flags, args, api }) {
    const res = await api.networks.deleteL3Network({ uuid: args[0]!, clientRequestId: flags.string("request-id") ?? "" });
    return { json: jsonOf(DeleteL3NetworkResponseSchema, res), text: `L3 network ${args[0]!} deleted\n` };
  },
};

const rangeAdd: Command = {
  group: "network",
  service: "network",
  name: "range add",
  summary: "add a range of allocatable addresses to a network",
  description:
    "Adds the addresses --start to --end (both included) to those a network hands out. They must be inside its CIDR, " +
    "not its network, broadcast or gateway address, and overlap none of its other ranges. " +
    "With --request-id, repeating the same command returns the first range.",
  args: NETWORK_ARG,
  flags: {
    start: { type: "string", value: "IP", description: "the first address", required: true },
    end: { type: "string", value: "IP", description: "the last address (not before --start)", required: true },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first range" },
    uuid: { type: "string", value: "UUID", description: "UUID for the new range (default: the server chooses)" },
  },
  examples: ["stratumctl network range add 0b7c… --start 10.0.0.10 --end 10.0.255.250"],
  async run({ flags, args, api }) {
    const request = { l3NetworkUuid: args[0]!, startIp: flags.required("start"), endIp: flags.required("end"), clientRequestId: flags.string("request-id") ?? "", uuid: flags.string("uuid") ?? "" };
    const range = present((await api.networks.addIpRange(request)).ipRange, "IP range");
    return { json: jsonOf(IpRangeSchema, range), text: renderTable(RANGE_COLUMNS, [rangeRow(range)]) };
  },
};

const rangeList: Command = {
  group: "network",
  service: "network",
  name: "range list",
  summary: "list a network's IP ranges",
  description: "Lists the IP ranges of a network in address order, with how many addresses each holds.",
  args: NETWORK_ARG,
  flags: {},
  async run({ args, api }) {
    const res = await api.networks.listIpRanges({ l3NetworkUuid: args[0]! });
    const empty = res.ipRanges.length === 0;
    return {
      json: jsonOf(ListIpRangesResponseSchema, res),
      text: empty ? "" : renderTable(RANGE_COLUMNS, res.ipRanges.map(rangeRow)),
      notes: empty ? [`no IP ranges on network ${args[0]!}: add one with 'stratumctl network range add ${args[0]!} --start IP --end IP'`] : [],
    };
  },
};

const rangeDelete: Command = {
  group: "network",
  service: "network",
  name: "range delete",
  summary: "delete an IP range none of whose addresses is held",
  description: "Deletes an IP range (by its UUID, from 'network range list'). Refused while one of its addresses is held. Deleting a range that is gone changes nothing.",
  args: UUID_ARG,
  flags: { ...REQUEST_ID },
  async run({ flags, args, api }) {
    const res = await api.networks.deleteIpRange({ uuid: args[0]!, clientRequestId: flags.string("request-id") ?? "" });
    return { json: jsonOf(DeleteIpRangeResponseSchema, res), text: `IP range ${args[0]!} deleted\n` };
  },
};

const IP_COLUMNS = ["IP", "HOLDER", "HOLDER UUID", "VM", "SINCE"];

function ipRow(a: IpAddress): string[] {
  return [a.ip, enumWord(IpHolderKindSchema, a.holderKind), a.holderUuid, a.vmUuid, formatTime(a.createTime)];
}

const ips: Command = {
  group: "network",
  service: "network",
  name: "ips",
  summary: "list the addresses held on a network, and by what",
  description: "Lists the addresses of a network that are held, in address order, each with its holder: a VM's NIC (and its VM) or the VIP of an elastic IP.",
  args: NETWORK_ARG,
  flags: { ...PAGING_FLAGS },
  examples: ["stratumctl network ips 0b7c…", "stratumctl network ips 0b7c… --all --json"],
  async run({ flags, args, api }) {
    const l3NetworkUuid = args[0]!;
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.networks.listIpAddresses({ l3NetworkUuid, ...page });
      return { items: res.ipAddresses, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListIpAddressesResponseSchema, create(ListIpAddressesResponseSchema, { ipAddresses: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: IP_COLUMNS, row: ipRow, noun: "held addresses", command: `network ips ${l3NetworkUuid}` });
  },
};

export const NETWORK_COMMANDS: readonly Command[] = [createNetwork, list, get, remove, rangeAdd, rangeList, rangeDelete, ips];
