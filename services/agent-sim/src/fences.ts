import { AgentErrorCode, FENCING_TOKEN_PATTERN } from "@stratum/agent-protocol";
import { CommandError } from "./command-error";

/** What a host's fencing did, for tests and the chaos tally. */
export interface FencingStats {
  /** Commands refused because their token was older than the newest seen for their resource. */
  refused: number;
  /**
   * Commands that arrived while a command of another token was still executing on the same
   * resource: two senders (an old and a new owner) acting on it at once. The later one waits for
   * the earlier to end, so the agent stays consistent; a control plane that hands resources over
   * correctly never causes one.
   */
  overlaps: number;
  /** Resources the host has seen a token for. */
  resources: number;
}

interface Running {
  token: number;
  done: Promise<void>;
}

/** A parsed `x-fencing-token` header. */
export interface Fence {
  resource: string;
  token: number;
}

/** Reads the header; undefined when absent, 400 `INVALID_FENCING_TOKEN` when malformed. */
export function parseFence(header: string | string[] | undefined): Fence | undefined {
  if (header === undefined) return undefined;
  const match = typeof header === "string" ? FENCING_TOKEN_PATTERN.exec(header) : null;
  if (!match) throw CommandError.badRequest(AgentErrorCode.INVALID_FENCING_TOKEN, `invalid x-fencing-token header: must be <resource>=<token>`);
  return { resource: match[1]!, token: Number(match[2]) };
}

/**
 * The agent's side of fencing, as a fenced store keeps it: the newest token per resource; a
 * command with an older one is refused with 409 `FENCED`; one with a newer token runs only after
 * the commands of older tokens still executing on that resource have ended (or their callers
 * hung up), so the new owner sees what the old one had already set going.
 */
export class FenceTable {
  readonly #newest = new Map<string, number>();
  readonly #running = new Map<string, Set<Running>>();
  #refused = 0;
  #overlaps = 0;

  /**
   * Admits a command: throws 409 `FENCED` for a stale token, else records it as running and
   * resolves, once every older command on the resource has ended, with the function that ends it.
   */
  async enter(fence: Fence): Promise<() => void> {
    const newest = this.#newest.get(fence.resource);
    if (newest !== undefined && fence.token < newest) {
      this.#refused += 1;
      throw CommandError.conflict(
        AgentErrorCode.FENCED,
        `fencing token ${fence.token} for ${fence.resource} is older than ${newest}, the newest this agent has seen: the sender no longer owns it`,
      );
    }
    this.#newest.set(fence.resource, fence.token);
    let running = this.#running.get(fence.resource);
    if (!running) this.#running.set(fence.resource, (running = new Set()));
    const older = [...running].filter((r) => r.token < fence.token);
    if ([...running].some((r) => r.token !== fence.token)) this.#overlaps += 1;
    let end!: () => void;
    const self: Running = { token: fence.token, done: new Promise<void>((resolve) => (end = resolve)) };
    running.add(self);
    await Promise.all(older.map((r) => r.done));
    return () => {
      if (!running.delete(self)) return;
      if (running.size === 0) this.#running.delete(fence.resource);
      end();
    };
  }

  get stats(): FencingStats {
    return { refused: this.#refused, overlaps: this.#overlaps, resources: this.#newest.size };
  }
}
