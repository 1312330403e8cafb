/**
 * `stratumctl broker …`: the service broker (BrokerService; proto/stratum/broker/v1/broker.proto),
 * as a tenant: every call carries a bearer token (`--token`, `$STRATUM_BROKER_TOKEN`, or the
 * devstack's dev token), which the broker maps to the tenant whose instances the call sees.
 *
 * An instance is named by the caller's key (INSTANCE_ID, an OSB platform's instance id): creating
 * the same key again with the same plan and parameters returns the first instance and its
 * operation, so a retried `instance create` never makes a second VM. Create and delete answer at
 * once with the instance and its operation (a long job); `--wait` polls that operation until it
 * ends (broker-wait.ts), bounded by `--wait-timeout`. Bindings are made synchronously and print
 * their credentials.
 */
import { create, type JsonObject } from "@bufbuild/protobuf";
import {
  BindingSchema,
  GetCatalogResponseSchema,
  InstanceSchema,
  InstanceState,
  InstanceStateSchema,
  ListInstancesResponseSchema,
  OperationKindSchema,
  UnbindInstanceResponseSchema,
  type Binding,
  type CatalogPlan,
  type CatalogService,
  type Instance,
} from "@stratum/proto/stratum/broker/v1/broker_pb";
import type { FlagSpecs } from "../args";
import { DEFAULT_INSTANCE_WAIT_MS, waitForOperation } from "../broker-wait";
import { enumChoices, enumWord } from "../enums";
import { parseJobParams } from "../job-params";
import { renderFields, renderTable } from "../table";
import { formatSize } from "../units";
import { UsageError } from "../usage-error";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Command, type CommandInput, type CommandResult } from "./command";

const TOKEN: FlagSpecs = {
  token: { type: "string", value: "TOKEN", description: "bearer token, mapped by the broker to a tenant (default: $STRATUM_BROKER_TOKEN, else the devstack's dev token in endpoints.json)" },
};

const PARAM_FLAGS: FlagSpecs = {
  param: { type: "string", value: "KEY=VALUE", description: "a parameter of the plan's schema (repeatable; numbers and true/false are typed)", repeatable: true },
  "params-json": { type: "string", value: "JSON", description: "parameters as one JSON object" },
};

function waitFlags(what: string, outcome: string): FlagSpecs {
  return {
    wait: { type: "boolean", description: `poll the ${what} operation until it ends: exit 0 once ${outcome}, 1 if it failed (Ctrl-C stops waiting, not the operation)` },
    "wait-timeout": { type: "string", value: "SECONDS", description: `give up --wait after this long, exit 1 (default ${DEFAULT_INSTANCE_WAIT_MS / 1000})` },
  };
}

const COLUMNS = ["INSTANCE ID", "STATE", "PLAN", "ADDRESS", "VM", "OPERATION"];

function row(i: Instance): string[] {
  return [i.instanceId, enumWord(InstanceStateSchema, i.state), i.planId, i.address, i.vmUuid, i.operation];
}

function instanceResult(i: Instance | undefined): CommandResult {
  const instance = present(i, "instance");
  return { json: jsonOf(InstanceSchema, instance), text: renderTable(COLUMNS, [row(instance)]) };
}

/** How long `--wait` may wait, read before any call so a bad value changes nothing. */
function waitTimeout(input: CommandInput, command: string): number {
  const timeoutMs = input.flags.seconds("wait-timeout");
  if (timeoutMs !== undefined && !input.flags.bool("wait")) throw new UsageError("--wait-timeout needs --wait", command);
  return timeoutMs ?? DEFAULT_INSTANCE_WAIT_MS;
}

/** The answered instance, or with --wait the instance as its operation left it (display on stdout for people, stderr with --json). */
async function operationResult(input: CommandInput, timeoutMs: number, answered: Instance, notes: string[] = []): Promise<CommandResult> {
  const { flags, api, io } = input;
  if (!flags.bool("wait")) return { ...instanceResult(answered), notes };
  for (const note of notes) io.stderr.write(`${note}\n`);
  const outcome = await waitForOperation({
    instanceId: answered.instanceId,
    operation: answered.operation,
    timeoutMs,
    get: (signal) => api.broker.getInstanceOperation({ instanceId: answered.instanceId, operation: answered.operation }, { signal }),
    out: flags.bool("json") ? io.stderr : io.stdout,
    signal: io.signal,
  });
  return { json: jsonOf(InstanceSchema, outcome.last?.instance ?? answered), text: "", exitCode: outcome.code };
}

/** The parameters of --param/--params-json, with the named flags' own ones merged in. */
function parameters(input: CommandInput, command: string, named: JsonObject = {}): JsonObject {
  const params = parseJobParams(input.flags.strings("param"), input.flags.string("params-json"), command);
  for (const [key, value] of Object.entries(named)) {
    if (key in params) throw new UsageError(`parameter "${key}" given both by --${key} and as a parameter`, command);
    params[key] = value;
  }
  return params;
}

/** The catalog's service and plan a create names: a plan by id or name, in the --service given (id or name) or the one service that has it. */
export function findPlan(services: readonly CatalogService[], plan: string, service: string | undefined): { service: CatalogService; plan: CatalogPlan } {
  const candidates = services.filter((s) => service === undefined || s.id === service || s.name === service);
  if (service !== undefined && candidates.length === 0) throw new UsageError(`the catalog has no service "${service}"; it has ${services.map((s) => s.name).join(", ") || "none"} ('stratumctl broker catalog')`, "broker instance create");
  const hits = candidates.flatMap((s) => s.plans.filter((p) => p.id === plan || p.name === plan).map((p) => ({ service: s, plan: p })));
  if (hits.length === 1) return hits[0]!;
  if (hits.length === 0) {
    const known = candidates.flatMap((s) => s.plans.map((p) => p.id));
    throw new UsageError(`the catalog has no plan "${plan}"${service ? ` in service ${service}` : ""}; plans: ${known.join(", ") || "none"} ('stratumctl broker catalog')`, "broker instance create");
  }
  throw new UsageError(`plan "${plan}" is in several services (${hits.map((h) => h.service.name).join(", ")}): name one with --service`, "broker instance create");
}

const catalog: Command = {
  group: "broker",
  service: "broker",
  name: "catalog",
  summary: "list the broker's services and their plans",
  description: "Lists every plan of every service the broker offers, with its VM size ('--json': the catalog, each plan's parameter schemas included).",
  args: [],
  flags: { ...TOKEN },
  async run({ api }) {
    const res = await api.broker.getCatalog({});
    const rows = res.services.flatMap((s) => s.plans.map((p) => [s.name, p.id, p.name, String(p.cpu), formatSize(p.memoryBytes), formatSize(p.rootVolumeBytes), p.free ? "yes" : "no", p.description]));
    return {
      json: jsonOf(GetCatalogResponseSchema, res),
      text: rows.length ? renderTable(["SERVICE", "PLAN", "NAME", "CPU", "MEMORY", "ROOT VOLUME", "FREE", "DESCRIPTION"], rows) : "",
      notes: rows.length ? [] : ["the catalog has no plans"],
    };
  },
};

const createInstance: Command = {
  group: "broker",
  service: "broker",
  name: "instance create",
  summary: "provision an instance of a plan (a VM; with --eip an elastic IP too)",
  description:
    "Provisions an instance under your key INSTANCE_ID: a VM of the plan's size with a NIC on the broker's network and, with --eip, an elastic IP. " +
    "Answers at once with the instance Provisioning and its operation. The same key with the same plan and parameters returns the first instance " +
    "(no second VM); with others it is refused (ALREADY_EXISTS). With --wait, exit 0 once it is Ready.",
  args: ["INSTANCE_ID"],
  flags: {
    plan: { type: "string", value: "PLAN", description: "the plan, by id or name (e.g. vm-small or small: 'broker catalog')", required: true },
    service: { type: "string", value: "SERVICE", description: "the catalog service, by id or name (default: the one with the plan)" },
    name: { type: "string", value: "NAME", description: "the VM's name (parameter name; default: from the instance id)" },
    eip: { type: "boolean", description: "give the VM an elastic IP on the broker's public network (parameter eip)" },
    ...PARAM_FLAGS,
    ...waitFlags("provision", "the instance is Ready"),
    ...TOKEN,
  },
  examples: ["stratumctl broker instance create web-1 --plan small --wait", "stratumctl broker instance create web-2 --plan vm-medium --eip --wait --json"],
  async run(input) {
    const { flags, args, api } = input;
    const command = "broker instance create";
    const timeoutMs = waitTimeout(input, command);
    const named: JsonObject = {};
    const name = flags.string("name");
    if (name !== undefined) named.name = name;
    if (flags.bool("eip")) named.eip = true;
    const params = parameters(input, command, named);
    const { services } = await api.broker.getCatalog({});
    const found = findPlan(services, flags.required("plan"), flags.string("service"));
    const res = await api.broker.provisionInstance({ instanceId: args[0]!, serviceId: found.service.id, planId: found.plan.id, parameters: params });
    const instance = present(res.instance, "instance");
    const notes = res.created ? [] : [`instance ${instance.instanceId} already existed with this plan and these parameters: nothing new was provisioned (operation ${instance.operation})`];
    return operationResult(input, timeoutMs, instance, notes);
  },
};

const getInstance: Command = {
  group: "broker",
  service: "broker",
  name: "instance get",
  summary: "show one instance",
  description: "Shows your live instance of a key (or the last one, once Deleted): its state, VM, address, operation and error.",
  args: ["INSTANCE_ID"],
  flags: { ...TOKEN },
  async run({ args, api }) {
    const i = present((await api.broker.getInstance({ instanceId: args[0]! })).instance, "instance");
    return {
      json: jsonOf(InstanceSchema, i),
      text: renderFields([
        ["Instance ID", i.instanceId],
        ["UUID", i.uuid],
        ["State", enumWord(InstanceStateSchema, i.state)],
        ["Service", i.serviceId],
        ["Plan", i.planId],
        ["Parameters", JSON.stringify(i.parameters ?? {})],
        ["VM", i.vmUuid],
        ["Elastic IP", i.eipUuid],
        ["Address", i.address],
        ["Operation", i.operation ? `${i.operation} (${enumWord(OperationKindSchema, i.operationKind)})` : ""],
        ["Error", i.error && (i.error.reason || i.error.message) ? `${i.error.reason}: ${i.error.message}` : ""],
        ["Created", formatTime(i.createTime)],
        ["Updated", formatTime(i.updateTime)],
      ]),
    };
  },
};

const STATE_CHOICES = enumChoices<InstanceState>(InstanceStateSchema);

const listInstances: Command = {
  group: "broker",
  service: "broker",
  name: "instance list",
  summary: "list your instances",
  description: "Lists your instances in creation order, one page at a time unless --all is given (Deleted ones only with --state deleted).",
  args: [],
  flags: {
    state: { type: "string", value: "STATE", description: `only instances in this state: ${[...STATE_CHOICES.keys()].join(", ")}` },
    ...PAGING_FLAGS,
    ...TOKEN,
  },
  examples: ["stratumctl broker instance list", "stratumctl broker instance list --state ready --all --json"],
  async run({ flags, api }) {
    const state = flags.choice("state", STATE_CHOICES) ?? InstanceState.UNSPECIFIED;
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.broker.listInstances({ state, ...page });
      return { items: res.instances, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListInstancesResponseSchema, create(ListInstancesResponseSchema, { instances: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "instances", command: "broker instance list" });
  },
};

const deleteInstance: Command = {
  group: "broker",
  service: "broker",
  name: "instance delete",
  summary: "deprovision an instance (its bindings, VM and elastic IP)",
  description:
    "Deprovisions the instance: revokes its bindings and releases its VM and elastic IP. Answers at once with the instance Deprovisioning and its " +
    "operation; a repeat while it runs returns the same operation. Once it is Deleted the key may be provisioned again. With --wait, exit 0 once it is Deleted.",
  args: ["INSTANCE_ID"],
  flags: { ...waitFlags("deprovision", "the instance is Deleted"), ...TOKEN },
  examples: ["stratumctl broker instance delete web-1 --wait"],
  async run(input) {
    const timeoutMs = waitTimeout(input, "broker instance delete");
    const res = await input.api.broker.deprovisionInstance({ instanceId: input.args[0]! });
    return operationResult(input, timeoutMs, present(res.instance, "instance"));
  },
};

function bindingResult(b: Binding | undefined, created: boolean): CommandResult {
  const binding = present(b, "binding");
  const c = binding.credentials;
  return {
    json: jsonOf(BindingSchema, binding),
    text: renderFields([
      ["Binding ID", binding.bindingId],
      ["Instance ID", binding.instanceId],
      ["Address", c?.address ?? ""],
      ["Port", c ? String(c.port) : ""],
      ["Username", c?.username ?? ""],
      ["Password", c?.password ?? ""],
      ["URI", c?.uri ?? ""],
      ["Created", formatTime(binding.createTime)],
    ]),
    notes: created ? [] : [`binding ${binding.bindingId} already existed with these parameters: these are its credentials`],
  };
}

const bind: Command = {
  group: "broker",
  service: "broker",
  name: "instance bind",
  summary: "create credentials for a Ready instance",
  description:
    "Creates a binding under your key BINDING_ID: credentials (address, port, user, a generated password) to reach the instance. " +
    "The same key with the same parameters returns the same credentials; with others it is refused (ALREADY_EXISTS).",
  args: ["INSTANCE_ID", "BINDING_ID"],
  flags: { username: { type: "string", value: "USER", description: "the login name (parameter username; default stratum)" }, ...PARAM_FLAGS, ...TOKEN },
  examples: ["stratumctl broker instance bind web-1 app-1", "stratumctl broker instance bind web-1 ops --username ops --json"],
  async run(input) {
    const username = input.flags.string("username");
    const params = parameters(input, "broker instance bind", username !== undefined ? { username } : {});
    const res = await input.api.broker.bindInstance({ instanceId: input.args[0]!, bindingId: input.args[1]!, parameters: params });
    return bindingResult(res.binding, res.created);
  },
};

const unbind: Command = {
  group: "broker",
  service: "broker",
  name: "instance unbind",
  summary: "revoke a binding's credentials",
  description: "Revokes the credentials of a binding of the instance.",
  args: ["INSTANCE_ID", "BINDING_ID"],
  flags: { ...TOKEN },
  async run({ args, api }) {
    const res = await api.broker.unbindInstance({ instanceId: args[0]!, bindingId: args[1]! });
    return { json: jsonOf(UnbindInstanceResponseSchema, res), text: `binding ${args[1]!} of instance ${args[0]!} revoked\n` };
  },
};

export const BROKER_COMMANDS: readonly Command[] = [catalog, createInstance, getInstance, listInstances, deleteInstance, bind, unbind];
