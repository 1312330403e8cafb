import type { AgentCommand, AgentReply } from "@stratum/agent-protocol";
import type { JsonObject } from "../fields";
import type { HostState } from "../host-state";

/** What a handler sees of the host it runs on. */
export interface HostView {
  readonly uuid: string;
  readonly url: string;
  readonly state: HostState;
  /** Default duration of a volume task that does not name one. */
  readonly volumeTaskDurationMs: number;
  /** Bytes a byte-counting volume task moves per chunk. */
  readonly chunkBytes: number;
  /** Memory copy time of a migration that does not name one. */
  readonly migrateDurationMs: number;
  /** False while the host's agent is stopped (crashed): a migration to it must fail. */
  readonly listening: boolean;
}

/** Lets a handler reach the other hosts of the same sim (migration moves a VM to one). */
export interface HostDirectory {
  /** By host uuid or agent URL (`http://127.0.0.1:7071`, trailing slash ignored). */
  find(ref: string): HostView | undefined;
}

export interface CommandContext {
  readonly command: string;
  /**
   * The parsed JSON body; always an object (`{}` when the request had no body). Untyped on
   * purpose: it is what a client sent, so a handler validates it (see `fields.ts`) as a real
   * agent must, answering 400 naming the field.
   */
  readonly body: JsonObject;
  readonly taskId: string | undefined;
  /** The caller's `x-request-id`, if it sent one. */
  readonly requestId: string | undefined;
  readonly host: HostView;
  readonly hosts: HostDirectory;
}

/**
 * Runs one command and returns its JSON answer (sent with HTTP 200). To fail, throw a
 * `CommandError` (its status and code are sent); anything else thrown is a 500. Latency, faults,
 * holds and task-id dedup are applied around the handler by the host, so a handler is only the
 * command's semantics: adding a command to the sim is adding one entry to a {@link CommandTable}.
 */
export type CommandHandler<Reply = unknown> = (ctx: CommandContext) => Reply | Promise<Reply>;

/** Command name (the request path without its leading `/`, e.g. `vm/start`) → handler. */
export type CommandTable = Readonly<Record<string, CommandHandler>>;

/**
 * Handlers of protocol commands, each bound to answer its command's reply type
 * (`@stratum/agent-protocol`): a reply field the protocol renames is a type error here.
 */
export type ProtocolHandlers<C extends AgentCommand> = { readonly [K in C]: CommandHandler<AgentReply<K>> };
