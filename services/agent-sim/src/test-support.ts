/** Helpers for the sim's own tests: a minimal JSON client over Node's fetch. Not exported. */
import { FENCING_TOKEN_HEADER, REQUEST_ID_HEADER, TASK_ID_HEADER } from "./protocol";

export interface JsonReply {
  status: number;
  body: any;
  headers: Headers;
}

export async function post(baseUrl: string, command: string, body: unknown = {}, options: { taskId?: string; requestId?: string; fence?: string; signal?: AbortSignal } = {}): Promise<JsonReply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.taskId !== undefined) headers[TASK_ID_HEADER] = options.taskId;
  if (options.requestId !== undefined) headers[REQUEST_ID_HEADER] = options.requestId;
  if (options.fence !== undefined) headers[FENCING_TOKEN_HEADER] = options.fence;
  const res = await fetch(`${baseUrl}/${command}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : JSON.parse(text), headers: res.headers };
}

export async function request(url: string, method: string, body?: unknown): Promise<JsonReply> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : JSON.parse(text), headers: res.headers };
}

/** The low-level error code of a failed fetch (`ECONNRESET`, `UND_ERR_SOCKET`, …). */
export function causeCode(err: unknown): string | undefined {
  let e: any = err;
  for (let i = 0; i < 5 && e; i++) {
    if (typeof e.code === "string") return e.code;
    e = e.cause;
  }
  return undefined;
}

export const vmSpec = (vmUuid: string, extra: Record<string, unknown> = {}) => ({ vmUuid, cpuNum: 2, memoryBytes: 2 * 1024 ** 3, ...extra });
