import type http from "node:http";
import { CommandError } from "./command-error";
import { isJsonObject, type JsonObject } from "./fields";
import { AgentErrorCode } from "./protocol";

/** Largest request body accepted; agent commands are small JSON documents. */
export const MAX_BODY_BYTES = 1 << 20;

/** Reads a request body, failing with 413 beyond `limit` bytes. */
export async function readBody(req: http.IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooLarge = true; // keep draining so the connection stays usable
    else chunks.push(chunk);
  }
  if (tooLarge) throw new CommandError(413, AgentErrorCode.BODY_TOO_LARGE, `request body exceeds ${limit} bytes`);
  return Buffer.concat(chunks).toString("utf8");
}

/** Parses a command body: empty means `{}`; anything but a JSON object is a 400. */
export function parseJsonObject(raw: string): JsonObject {
  if (raw.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw CommandError.badRequest(AgentErrorCode.MALFORMED_JSON, `malformed JSON body: ${(err as Error).message}`);
  }
  if (!isJsonObject(value)) throw CommandError.badRequest(AgentErrorCode.INVALID_BODY, "request body must be a JSON object");
  return value;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const json = JSON.stringify(body ?? {});
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.end(json);
}

export function sendError(res: http.ServerResponse, err: unknown): void {
  if (err instanceof CommandError) {
    sendJson(res, err.status, err.toBody());
    return;
  }
  sendJson(res, 500, { error: { code: AgentErrorCode.INTERNAL, message: err instanceof Error ? err.message : String(err) } });
}
