/**
 * The agent wire protocol as the client sees it (the agent side lives in `@stratum/agent-sim`,
 * which real agents mirror): `POST <agentUrl>/<command>` with a JSON object body, JSON answers,
 * errors as HTTP 4xx/5xx with `{ error: { code, message } }`.
 */

/** Header carrying the caller's task id; the agent answers a repeated id from its first run. */
export const TASK_ID_HEADER = "x-task-id";

/** What the agent accepts as a task id (bounded, printable, header-safe). */
export const TASK_ID_PATTERN = /^[A-Za-z0-9._:@/-]{1,200}$/;

/** Command names are path segments like `vm/start` or `volume/task/status`. */
export const COMMAND_PATTERN = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/;

export interface AgentErrorDetail {
  code: string | undefined;
  message: string;
}

/** Reads `{ error: { code, message } }` from an error answer, falling back to the raw text. */
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
