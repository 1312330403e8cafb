/**
 * The framing every agent command shares: `POST <agentUrl>/<command>` with a JSON object body
 * (an empty body means `{}`), a JSON object answer with HTTP 200, and failures as HTTP 4xx/5xx
 * with an {@link AgentErrorBody}. Ids that concern the call rather than the command travel in
 * headers, so they work the same for every command, are never confused with its arguments, and
 * a client's retry layer can add them without touching the body.
 */

/** Header naming the caller's task id; the agent answers a repeat of it on the same host from the first run. */
export const TASK_ID_HEADER = "x-task-id";

/**
 * Header naming the request the command serves (the `x-request-id` of the RPC that caused it),
 * so an agent's log and the management plane's log lines of one request can be joined.
 */
export const REQUEST_ID_HEADER = "x-request-id";

/**
 * Header carrying the caller's fencing token for the resource the command is about:
 * `<resource>=<token>`, e.g. `vm:5f0c…=17`. The agent remembers the newest token per resource and
 * refuses an older one (409 `FENCED`), and runs a newer one only after the commands of older
 * tokens still executing on that resource have ended — the store-side half of fencing, so a
 * replica that lost a resource to a takeover cannot act on it, and its successor sees the effect
 * of whatever the old owner had already started. A command without the header is not fenced.
 */
export const FENCING_TOKEN_HEADER = "x-fencing-token";

/** `<resource>=<token>`: a resource key (printable, no `=`) and a non-negative integer. */
export const FENCING_TOKEN_PATTERN = /^([A-Za-z0-9._:@/-]{1,200})=(\d{1,15})$/;

/** The header value of a fencing token. */
export function fencingToken(resource: string, token: number): string {
  return `${resource}=${token}`;
}

/** Task ids are opaque to the agent, but bounded and printable so they are header-safe and safe to log. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9._:@/-]{1,200}$/;

/**
 * Request ids are opaque too: any visible ASCII (no spaces or control characters, which a header
 * cannot carry or a log could be forged with), bounded.
 */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Command names are path segments like `vm/start` or `volume/task/status` (no `..`, no empty segment). */
export const COMMAND_PATTERN = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/;

/** Body of every error answer. `code` is a stable UPPER_SNAKE reason (see `AgentErrorCode`), `message` is for humans. */
export interface AgentErrorBody {
  error: { code: string; message: string };
}

/** What a client could read of an error answer: the agent's code when it sent one, always a message. */
export interface AgentErrorDetail {
  code: string | undefined;
  message: string;
}

/**
 * Reads an {@link AgentErrorBody} from an error answer's text. A proxy or a crashing agent may
 * answer something else (HTML, nothing): then the raw text (bounded) or the status is the message,
 * so the caller still learns what came back.
 */
export function parseAgentError(text: string, status: number): AgentErrorDetail {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const error = parsed?.error;
    if (error && typeof error.message === "string") {
      return { code: typeof error.code === "string" ? error.code : undefined, message: error.message };
    }
  } catch {
    // not JSON: fall through
  }
  const snippet = text.trim().slice(0, 200);
  return { code: undefined, message: snippet === "" ? `HTTP ${status}` : `HTTP ${status}: ${snippet}` };
}
