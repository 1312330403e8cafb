/**
 * `stratumctl vm …`: VM instances. Each command is one VmService RPC; see
 * proto/stratum/compute/v1/vm.proto for the state machine the server enforces (a refused
 * operation comes back as FAILED_PRECONDITION naming the VM's current state, or VM_BUSY while
 * another operation works on it).
 *
 * The lifecycle calls answer once compute has accepted the operation, with the VM in its
 * transient state; that is what they print. With `--wait` they follow WatchVm to the outcome
 * (vm-wait.ts); with `--wait --json` the progress goes to stderr and stdout gets the VM as it
 * ended, so a script can both watch and parse.
 *
 * `vm migrate` is a long job (compute.migrate, on longjob): it answers with the VM and the job,
 * and `--wait` follows the job (job-follow.ts), then prints the VM where it ended up.
 */
import { create } from "@bufbuild/protobuf";
import { ListVmsResponseSchema, MigrateVmResponseSchema, VmSchema, VmState, VmStateSchema, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { enumChoices, enumWord } from "../enums";
import type { FlagSpecs } from "../args";
import { renderFields, renderTable } from "../table";
import { formatSize } from "../units";
import { TOOL_NAME } from "../tool-name";
import { VM_OPERATION_TARGET, waitForVm, type VmOperation } from "../vm-wait";
import { EXIT_INTERRUPTED } from "../writer";
import { followJob, jobWaitFlag } from "./job-follow";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Api, type Command, type CommandInput, type CommandResult } from "./command";

const COLUMNS = ["UUID", "NAME", "STATE", "CPU", "MEMORY", "HOST"];

function row(vm: Vm): string[] {
  return [vm.uuid, vm.name, enumWord(VmStateSchema, vm.state), String(vm.cpu), formatSize(vm.memoryBytes), vm.hostUuid];
}

/** One VM as a one-row table: what a mutation prints. */
function vmResult(v: Vm | undefined): CommandResult {
  const vm = present(v, "VM");
  return { json: jsonOf(VmSchema, vm), text: renderTable(COLUMNS, [row(vm)]) };
}

/** One line per NIC, in device order: what `eip attach --nic` takes, and the address network gave it. */
function nicFields(vm: Vm): [string, string][] {
  if (vm.nics.length === 0) return [["NICs", ""]];
  return vm.nics.map((n) => [`NIC ${n.deviceIndex}`, `${n.uuid} ${n.ip || "(no address yet)"} on L3 ${n.l3NetworkUuid}, mac ${n.mac}`]);
}

function vmDetails(vm: Vm): string {
  return renderFields([
    ["UUID", vm.uuid],
    ["Name", vm.name],
    ["State", enumWord(VmStateSchema, vm.state)],
    ["Host", vm.hostUuid],
    ["CPU", String(vm.cpu)],
    ["Memory", formatSize(vm.memoryBytes)],
    ["Root volume", vm.rootVolumeUuid],
    ...nicFields(vm),
    ["Last error", vm.lastError],
    ["Request ID", vm.clientRequestId],
    ["Created", formatTime(vm.createTime)],
    ["Updated", formatTime(vm.updateTime)],
  ]);
}

const UUID_ARG = ["UUID"] as const;

/** `--wait`, saying what the operation's outcome is. */
function waitFlag(operation: VmOperation): FlagSpecs {
  const target = enumWord(VmStateSchema, VM_OPERATION_TARGET[operation]);
  return {
    wait: {
      type: "boolean",
      description: `follow the VM until the ${operation} ends: exit 0 once it is ${target}, 1 with its last error if the ${operation} failed (Ctrl-C stops waiting, not the ${operation})`,
    },
  };
}

/** WatchVm as a stream of VMs. */
async function* watchVms(api: Api, uuid: string, signal: AbortSignal): AsyncIterable<Vm> {
  for await (const res of api.vms.watchVm({ uuid }, { signal })) yield present(res.vm, "VM");
}

/**
 * What an accepted operation prints: the VM as answered, or with --wait the VM at the
 * operation's outcome (the display goes to stdout for people, stderr with --json).
 */
async function operationResult(input: CommandInput, operation: VmOperation, v: Vm | undefined): Promise<CommandResult> {
  if (!input.flags.bool("wait")) return vmResult(v);
  const accepted = present(v, "VM");
  const { flags, api, io } = input;
  const outcome = await waitForVm({
    operation,
    accepted,
    watch: (signal) => watchVms(api, accepted.uuid, signal),
    out: flags.bool("json") ? io.stderr : io.stdout,
    signal: io.signal,
  });
  return { json: jsonOf(VmSchema, outcome.last ?? accepted), text: "", exitCode: outcome.code };
}

const createVm: Command = {
  group: "vm",
  name: "create",
  summary: "create a VM and start it",
  description:
    "Places a VM on a connected, enabled host with enough free CPU and memory (or on --host), with a NIC on each --network, and starts it. " +
    "Answers as soon as the VM is placed, Created (not yet started; no capacity is an error at once); " +
    "with --wait, follows it until it is Running (exit 0), or Error (exit 1, printing why the start failed). " +
    "With --request-id, repeating the same command returns the first VM; the same key with different flags is refused.",
  args: [],
  flags: {
    name: { type: "string", value: "NAME", description: "display name (1–128 characters)", required: true },
    cpu: { type: "string", value: "N", description: "virtual CPUs (1–512)", required: true },
    memory: { type: "string", value: "SIZE", description: "memory, e.g. 4GiB or 512MiB (at least 16 MiB)", required: true },
    host: { type: "string", value: "UUID", description: "place it on this host (default: the allocator chooses)" },
    "root-size": { type: "string", value: "SIZE", description: "size of its root volume, e.g. 20GiB (default 10 GiB)" },
    "primary-storage": { type: "string", value: "UUID", description: "primary storage of its root volume (default: the host's local one, else a shared one with room)" },
    network: {
      type: "string",
      value: "L3",
      repeatable: true,
      description: "give it a NIC on this L3 network, its address allocated by network; repeat for more, one NIC each in order (at most 8; the devstack's private one is endpoints.json's privateL3Network)",
    },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first VM" },
    uuid: { type: "string", value: "UUID", description: "UUID for the new VM (default: the server chooses)" },
    ...waitFlag("create"),
  },
  examples: [
    "stratumctl vm create --name web-1 --cpu 2 --memory 4GiB --wait",
    "stratumctl vm create --name web-2 --cpu 1 --memory 1GiB --network 4b1d… --wait",
    "stratumctl vm create --name db-1 --cpu 8 --memory 32G --host 0b7c… --request-id deploy-42-db-1",
  ],
  async run(input) {
    const { flags, api } = input;
    const request = {
      name: flags.required("name"),
      cpu: flags.uint32("cpu", true),
      memoryBytes: flags.size("memory", true),
      hostUuid: flags.string("host") ?? "",
      rootVolumeSizeBytes: flags.size("root-size") ?? 0n,
      primaryStorageUuid: flags.string("primary-storage") ?? "",
      l3NetworkUuids: [...flags.strings("network")],
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return operationResult(input, "create", (await api.vms.createVm(request)).vm);
  },
};

const STATE_CHOICES = enumChoices<VmState>(VmStateSchema);

const list: Command = {
  group: "vm",
  name: "list",
  summary: "list VMs",
  description: "Lists VMs in creation order, filtered, one page at a time unless --all is given. Destroyed VMs are listed only with --state destroyed.",
  args: [],
  flags: {
    state: { type: "string", value: "STATE", description: `only VMs in this state: ${[...STATE_CHOICES.keys()].join(", ")}` },
    host: { type: "string", value: "UUID", description: "only VMs on this host" },
    name: { type: "string", value: "NAME", description: "only VMs with exactly this name" },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl vm list --state running", "stratumctl vm list --host 0b7c… --all --json"],
  async run({ flags, api }) {
    const filter = { state: flags.choice("state", STATE_CHOICES) ?? VmState.UNSPECIFIED, hostUuid: flags.string("host") ?? "", name: flags.string("name") ?? "" };
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.vms.listVms({ ...filter, ...page });
      return { items: res.vms, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListVmsResponseSchema, create(ListVmsResponseSchema, { vms: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "VMs", command: "vm list" });
  },
};

const get: Command = {
  group: "vm",
  name: "get",
  summary: "show one VM",
  description: "Shows a VM in detail, including why its last operation failed, if it did.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const vm = present((await api.vms.getVm({ uuid: args[0]! })).vm, "VM");
    return { json: jsonOf(VmSchema, vm), text: vmDetails(vm) };
  },
};

/** start, reboot and destroy: a UUID in, the VM as accepted (or, with --wait, at the outcome) out. */
function lifecycleCommand(operation: VmOperation, summary: string, description: string, call: (api: Api, uuid: string) => Promise<{ vm?: Vm | undefined }>): Command {
  return {
    group: "vm",
    name: operation,
    summary,
    description,
    args: UUID_ARG,
    flags: { ...waitFlag(operation) },
    async run(input) {
      return operationResult(input, operation, (await call(input.api, input.args[0]!)).vm);
    },
  };
}

const stop: Command = {
  group: "vm",
  name: "stop",
  summary: "stop a Running VM",
  description:
    "Stops a Running VM: asks the guest to shut down, or powers it off at once with --force. A stopped VM keeps its host capacity. " +
    "Answers with the VM Stopping; with --wait, follows it until it is Stopped (exit 0), or Running again with the error (exit 1).",
  args: UUID_ARG,
  flags: {
    force: { type: "boolean", description: "power off at once instead of asking the guest to shut down" },
    ...waitFlag("stop"),
  },
  async run(input) {
    const { flags, args, api } = input;
    return operationResult(input, "stop", (await api.vms.stopVm({ uuid: args[0]!, force: flags.bool("force") })).vm);
  },
};

const migrate: Command = {
  group: "vm",
  name: "migrate",
  summary: "live-migrate a Running VM to another host, cancelling named backups first",
  description:
    "Starts a migration job: it cancels the backup jobs named by --cancel-backup (a cancel that fails fails the migration, naming the job), " +
    "waits until no backup task runs on the VM's volumes (at most --backup-wait-ms), then moves the VM to --host, or to a host the allocator " +
    "chooses. Prints the VM and the job; with --wait, follows the job to its end and prints the VM where it is: exit 0 when the job Succeeded, " +
    "1 otherwise (a failed or cancelled migration leaves the VM on its source).",
  args: UUID_ARG,
  flags: {
    host: { type: "string", value: "UUID", description: "the host to migrate to (default: one with enough free capacity, not the VM's own)" },
    "cancel-backup": { type: "string", value: "JOB", repeatable: true, description: "a backup job on the VM's volumes to cancel first (its job uuid, from 'backup get'); repeat for more" },
    "backup-wait-ms": { type: "string", value: "N", description: "how long to wait for the backup tasks to exit, 1000–600000 ms (default: the server's, 30000)" },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first job" },
    ...jobWaitFlag("migration"),
  },
  examples: ["stratumctl vm migrate 0b7c… --wait", "stratumctl vm migrate 0b7c… --host 1d2e… --cancel-backup 3f4a… --cancel-backup 5b6c… --wait"],
  async run(input) {
    const { flags, args, api } = input;
    const request = {
      uuid: args[0]!,
      targetHostUuid: flags.string("host") ?? "",
      cancelBackupJobUuids: [...flags.strings("cancel-backup")],
      backupWaitTimeoutMs: flags.uint32("backup-wait-ms") ?? 0,
      clientRequestId: flags.string("request-id") ?? "",
    };
    const res = await api.vms.migrateVm(request);
    const vm = present(res.vm, "VM");
    const json = (v: Vm) => jsonOf(MigrateVmResponseSchema, create(MigrateVmResponseSchema, { vm: v, jobUuid: res.jobUuid }));
    if (!flags.bool("wait")) return { json: json(vm), text: `${renderTable(COLUMNS, [row(vm)])}migration job ${res.jobUuid}\n` };
    const outcome = await followJob(input, res.jobUuid, { cancelCommand: `${TOOL_NAME} job cancel ${res.jobUuid}` });
    if (outcome.code === EXIT_INTERRUPTED) return { json: json(vm), text: "", exitCode: outcome.code };
    const ended = present((await api.vms.getVm({ uuid: vm.uuid })).vm, "VM");
    return { json: json(ended), text: renderTable(COLUMNS, [row(ended)]), exitCode: outcome.code };
  },
};

export const VM_COMMANDS: readonly Command[] = [
  createVm,
  list,
  get,
  lifecycleCommand(
    "start",
    "start a Stopped VM",
    "Starts a Stopped VM on its host. Answers with the VM Starting; with --wait, follows it until it is Running (exit 0), or Stopped again with the error (exit 1).",
    (api, uuid) => api.vms.startVm({ uuid }),
  ),
  stop,
  lifecycleCommand(
    "reboot",
    "reboot a Running VM",
    "Reboots a Running VM. Answers with the VM Rebooting; with --wait, follows it until it is Running again (exit 0), or Running with the error of a reboot that failed (exit 1).",
    (api, uuid) => api.vms.rebootVm({ uuid }),
  ),
  lifecycleCommand(
    "destroy",
    "destroy a VM and release its capacity",
    "Destroys a VM and releases its host capacity. Answers with the VM Destroying (Destroyed when it already was: that changes nothing); " +
      "with --wait, follows it until it is Destroyed (exit 0), or back in its state before with the error (exit 1).",
    (api, uuid) => api.vms.destroyVm({ uuid }),
  ),
  migrate,
];
