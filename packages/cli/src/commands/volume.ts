/**
 * `stratumctl volume …`: virtual disks on primary storage (StorageService). A volume's bytes are
 * reserved on its storage at its full size, so `create` and `resize` fail at once with
 * RESOURCE_EXHAUSTED when the storage has not that much free. `volume tasks` shows what the
 * agents are doing on volumes (backups, restores, resizes…): what a migration waits for.
 */
import { create } from "@bufbuild/protobuf";
import { ListVolumesResponseSchema, ListVolumeTasksResponseSchema } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { VolumeKind, VolumeKindSchema, VolumeSchema, VolumeState, VolumeStateSchema, type Volume, type VolumeTask } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { enumChoices, enumWord } from "../enums";
import { renderFields, renderTable } from "../table";
import { formatSize } from "../units";
import { UsageError } from "../usage-error";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Command, type CommandResult } from "./command";

const COLUMNS = ["UUID", "NAME", "KIND", "SIZE", "STATE", "VM", "STORAGE"];

function row(v: Volume): string[] {
  return [v.uuid, v.name, enumWord(VolumeKindSchema, v.kind), formatSize(v.sizeBytes), enumWord(VolumeStateSchema, v.state), v.vmUuid, v.primaryStorageUuid];
}

function volumeResult(v: Volume | undefined): CommandResult {
  const volume = present(v, "volume");
  return { json: jsonOf(VolumeSchema, volume), text: renderTable(COLUMNS, [row(volume)]) };
}

const UUID_ARG = ["UUID"] as const;
const REQUEST_ID = { "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key changes nothing more" } } as const;

const KIND_CHOICES = enumChoices<VolumeKind>(VolumeKindSchema);
const STATE_CHOICES = enumChoices<VolumeState>(VolumeStateSchema);

const createVolume: Command = {
  group: "volume",
  service: "storage",
  name: "create",
  summary: "create a volume on a primary storage",
  description:
    "Creates a volume, Available, reserving its size on the storage (RESOURCE_EXHAUSTED when the storage has not that much free). " +
    "With --request-id, repeating the same command returns the first volume.",
  args: [],
  flags: {
    name: { type: "string", value: "NAME", description: "display name (1–128 characters)", required: true },
    size: { type: "string", value: "SIZE", description: "size, e.g. 10GiB or 512MiB (1 MiB – 64 TiB)", required: true },
    storage: { type: "string", value: "UUID", description: "the primary storage to create it on", required: true },
    kind: { type: "string", value: "KIND", description: `${[...KIND_CHOICES.keys()].join(" or ")} (default data; compute creates the root volumes of its VMs)` },
    ...REQUEST_ID,
    uuid: { type: "string", value: "UUID", description: "UUID for the new volume (default: the server chooses)" },
  },
  examples: ["stratumctl volume create --name data-1 --size 10GiB --storage 0b7c…"],
  async run({ flags, api }) {
    const request = {
      name: flags.required("name"),
      sizeBytes: flags.size("size", true),
      primaryStorageUuid: flags.required("storage"),
      kind: flags.choice("kind", KIND_CHOICES) ?? VolumeKind.DATA,
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return volumeResult((await api.storage.createVolume(request)).volume);
  },
};

const list: Command = {
  group: "volume",
  service: "storage",
  name: "list",
  summary: "list volumes",
  description: "Lists volumes in creation order, filtered, one page at a time unless --all is given.",
  args: [],
  flags: {
    storage: { type: "string", value: "UUID", description: "only volumes on this primary storage" },
    state: { type: "string", value: "STATE", description: `only volumes in this state: ${[...STATE_CHOICES.keys()].join(", ")}` },
    vm: { type: "string", value: "UUID", description: "only volumes attached to this VM" },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl volume list --vm 0b7c…", "stratumctl volume list --state in_use --all --json"],
  async run({ flags, api }) {
    const filter = { primaryStorageUuid: flags.string("storage") ?? "", state: flags.choice("state", STATE_CHOICES) ?? VolumeState.UNSPECIFIED, vmUuid: flags.string("vm") ?? "" };
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.storage.listVolumes({ ...filter, ...page });
      return { items: res.volumes, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListVolumesResponseSchema, create(ListVolumesResponseSchema, { volumes: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "volumes", command: "volume list" });
  },
};

const get: Command = {
  group: "volume",
  service: "storage",
  name: "get",
  summary: "show one volume",
  description: "Shows a volume in detail.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const v = present((await api.storage.getVolume({ uuid: args[0]! })).volume, "volume");
    return {
      json: jsonOf(VolumeSchema, v),
      text: renderFields([
        ["UUID", v.uuid],
        ["Name", v.name],
        ["Kind", enumWord(VolumeKindSchema, v.kind)],
        ["Size", formatSize(v.sizeBytes)],
        ["State", enumWord(VolumeStateSchema, v.state)],
        ["VM", v.vmUuid],
        ["Storage", v.primaryStorageUuid],
        ["Request ID", v.clientRequestId],
        ["Revision", String(v.revision)],
        ["Created", formatTime(v.createTime)],
        ["Updated", formatTime(v.updateTime)],
      ]),
    };
  },
};

const resize: Command = {
  group: "volume",
  service: "storage",
  name: "resize",
  summary: "grow a volume",
  description: "Grows a volume to --size (never shrinks it), reserving the difference on its storage.",
  args: UUID_ARG,
  flags: { size: { type: "string", value: "SIZE", description: "the new size, at least the current one, e.g. 20GiB", required: true }, ...REQUEST_ID },
  examples: ["stratumctl volume resize 0b7c… --size 20GiB"],
  async run({ flags, args, api }) {
    return volumeResult((await api.storage.resizeVolume({ uuid: args[0]!, sizeBytes: flags.size("size", true), clientRequestId: flags.string("request-id") ?? "" })).volume);
  },
};

const attach: Command = {
  group: "volume",
  service: "storage",
  name: "attach",
  summary: "attach an Available volume to a VM",
  description: "Attaches a volume to a VM (In Use). Attaching it again to the same VM changes nothing; to another VM is refused: detach it first.",
  args: UUID_ARG,
  flags: { vm: { type: "string", value: "UUID", description: "the VM to attach it to", required: true }, ...REQUEST_ID },
  async run({ flags, args, api }) {
    return volumeResult((await api.storage.attachVolume({ uuid: args[0]!, vmUuid: flags.required("vm"), clientRequestId: flags.string("request-id") ?? "" })).volume);
  },
};

const detach: Command = {
  group: "volume",
  service: "storage",
  name: "detach",
  summary: "detach a volume from its VM",
  description: "Detaches a volume from the VM it is attached to (Available).",
  args: UUID_ARG,
  flags: { ...REQUEST_ID },
  async run({ flags, args, api }) {
    return volumeResult((await api.storage.detachVolume({ uuid: args[0]!, clientRequestId: flags.string("request-id") ?? "" })).volume);
  },
};

const remove: Command = {
  group: "volume",
  service: "storage",
  name: "delete",
  summary: "delete an Available volume",
  description: "Deletes a volume and gives its bytes back to its storage. Refused while it is attached: detach it first.",
  args: UUID_ARG,
  flags: { ...REQUEST_ID },
  async run({ flags, args, api }) {
    return volumeResult((await api.storage.deleteVolume({ uuid: args[0]!, clientRequestId: flags.string("request-id") ?? "" })).volume);
  },
};

const TASK_COLUMNS = ["TASK", "VOLUME", "KIND", "STATE", "HOST", "PROGRESS", "STARTED"];

/** `1 GiB/4 GiB (25%)`, or the bytes done when the total is unknown. */
function taskProgress(t: VolumeTask): string {
  if (t.bytesTotal > 0n) return `${formatSize(t.bytesDone)}/${formatSize(t.bytesTotal)} (${(t.bytesDone * 100n) / t.bytesTotal}%)`;
  return t.bytesDone > 0n ? formatSize(t.bytesDone) : "";
}

function taskRow(t: VolumeTask): string[] {
  return [t.taskUuid, t.volumeUuid, t.kind, t.state, t.hostUuid, taskProgress(t), formatTime(t.startTime)];
}

const KIND_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

const tasks: Command = {
  group: "volume",
  service: "storage",
  name: "tasks",
  summary: "list the agent tasks running on volumes",
  description:
    "Lists the tasks the agents run on the given volumes (backup, restore, snapshot, resize…), as the agents report them: " +
    "what a migration of their VM waits for (backup tasks only). --kind keeps the tasks of those kinds.",
  args: ["VOLUME…"],
  flags: { kind: { type: "string", value: "KIND", repeatable: true, description: "only tasks of this kind, e.g. backup; repeat for more" } },
  examples: ["stratumctl volume tasks 0b7c… 1d2e…", "stratumctl volume tasks 0b7c… --kind backup"],
  async run({ flags, args, api }) {
    const kinds = flags.strings("kind");
    const bad = kinds.find((k) => !KIND_PATTERN.test(k));
    if (bad !== undefined) throw new UsageError(`invalid --kind "${bad}": must be a lower-case word such as backup`, "volume tasks");
    const res = await api.storage.listVolumeTasks({ volumeUuids: [...args], kinds: [...kinds] });
    const empty = res.tasks.length === 0;
    return {
      json: jsonOf(ListVolumeTasksResponseSchema, res),
      text: empty ? "" : renderTable(TASK_COLUMNS, res.tasks.map(taskRow)),
      notes: empty ? ["no tasks running on these volumes"] : [],
    };
  },
};

export const VOLUME_COMMANDS: readonly Command[] = [createVolume, list, get, resize, attach, detach, remove, tasks];
