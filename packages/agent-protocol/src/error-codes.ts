/**
 * The stable `error.code`s an agent answers with, and the HTTP status each comes with. Clients
 * branch on the status (the agent client maps it to a gRPC code) and keep the code as a detail;
 * `UNKNOWN_COMMAND` is the one code a client must tell apart (404 for "no such command", not "no
 * such VM"). Handlers of commands outside this protocol may answer codes of their own.
 */
export const AgentErrorCode = {
  // Framing (any command).
  /** 404: the path names no command this agent has. */
  UNKNOWN_COMMAND: "UNKNOWN_COMMAND",
  /** 405: not a POST. */
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  /** 400: the body is not JSON. */
  MALFORMED_JSON: "MALFORMED_JSON",
  /** 400: the body is JSON but not an object. */
  INVALID_BODY: "INVALID_BODY",
  /** 413: the body exceeds the agent's limit. */
  BODY_TOO_LARGE: "BODY_TOO_LARGE",
  /** 400: a required field is absent; the message names it. */
  MISSING_FIELD: "MISSING_FIELD",
  /** 400: a field has the wrong type or value; the message names it and what it must be. */
  INVALID_FIELD: "INVALID_FIELD",
  /** 400: the `x-task-id` header does not match `TASK_ID_PATTERN`. */
  INVALID_TASK_ID: "INVALID_TASK_ID",
  /** 400: the `x-request-id` header does not match `REQUEST_ID_PATTERN`. */
  INVALID_REQUEST_ID: "INVALID_REQUEST_ID",
  /** 409: the task id was used for another command, or the same command with another body. */
  TASK_ID_CONFLICT: "TASK_ID_CONFLICT",
  /** 400: the `x-fencing-token` header does not match `FENCING_TOKEN_PATTERN`. */
  INVALID_FENCING_TOKEN: "INVALID_FENCING_TOKEN",
  /** 409: the fencing token is older than the newest this agent has seen for the resource. */
  FENCED: "FENCED",
  /** 5xx: a fault the simulator was told to inject. */
  INJECTED_FAULT: "INJECTED_FAULT",
  /** 500: the command failed inside the agent. */
  INTERNAL: "INTERNAL",
  // Command semantics.
  /** 404: the VM is not on this host. */
  VM_NOT_FOUND: "VM_NOT_FOUND",
  /** 409: reboot or migrate of a VM that is not running. */
  VM_NOT_RUNNING: "VM_NOT_RUNNING",
  /** 409: the migration target already runs the VM. */
  VM_EXISTS_ON_TARGET: "VM_EXISTS_ON_TARGET",
  /** 404: the migration target is no host this agent knows. */
  TARGET_HOST_NOT_FOUND: "TARGET_HOST_NOT_FOUND",
  /** 503: the migration target's hypervisor does not answer. */
  TARGET_HOST_UNREACHABLE: "TARGET_HOST_UNREACHABLE",
  /** 409: the vip is used by another EIP on this host. */
  VIP_IN_USE: "VIP_IN_USE",
  /** 409: the migration was aborted (`vm/migrate/abort`) before its copy ended; the VM stays on its source. */
  MIGRATION_ABORTED: "MIGRATION_ABORTED",
  /** 409: a `backup` task runs (or is cancelling) on one of the migrating VM's volumes; the message names the tasks. */
  BLOCK_JOB_ACTIVE: "BLOCK_JOB_ACTIVE",
  /** 409: a migration of the VM is copying: a backup on its volumes (or a second migration) must wait. */
  VM_MIGRATING: "VM_MIGRATING",
  /** 409: a volume task of that uuid exists for another volume or kind. */
  VOLUME_TASK_EXISTS: "VOLUME_TASK_EXISTS",
  /** 404: no volume task of that uuid on this host. */
  VOLUME_TASK_NOT_FOUND: "VOLUME_TASK_NOT_FOUND",
} as const;

export type AgentErrorCodeName = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];
