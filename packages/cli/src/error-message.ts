/**
 * What the user reads when a call fails: one line per problem on stderr, starting `error:`.
 *
 * The server's errors carry a code, a stable reason and field violations (see StratumError); the
 * CLI prints all of them — the reason only when it adds something to the code — and each field
 * violation on its own line, so a create with three bad fields is fixed in one go. Errors that
 * never reached a Stratum server (nothing listening, a deadline that ran out on the way) have no
 * status details; those are told apart and worded as what they are: the CLI could not reach
 * the service (compute, longjob), or gave up waiting.
 */
import { Code, codeName, STATUS_DETAILS_KEY, StratumError } from "@stratum/rpc";
import { describeSource, ENDPOINTS_FILE, SERVICE_SOURCES, type Endpoint } from "./endpoint";

export interface ErrorContext {
  endpoint: Endpoint;
  timeoutMs: number;
  /** The request id the CLI sent, so an operator can find the server's log lines. */
  requestId: string;
}

/** What to check when nothing answers, by where the address came from. */
function unreachableHint(endpoint: Endpoint): string {
  const { flag, env } = SERVICE_SOURCES[endpoint.service];
  switch (endpoint.source) {
    case "devstack":
      return `; the address is from ${ENDPOINTS_FILE}: is the devstack running (pnpm start)?`;
    case "default":
      return `; start the devstack (pnpm start), or pass --${flag} HOST:PORT or set ${env}`;
    default:
      return endpoint.source.startsWith("--") ? "" : `; the address is from ${describeSource(endpoint.source)}`;
  }
}

/** Whether the error came back from a Stratum server (its google.rpc.Status trailer is present). */
function fromServer(err: StratumError): boolean {
  const cause = err.cause as { metadata?: { get(key: string): unknown[] } } | undefined;
  return typeof cause?.metadata?.get === "function" && cause.metadata.get(STATUS_DETAILS_KEY).length > 0;
}

/** Lines (without newlines) describing a failed call. */
export function describeError(err: StratumError, ctx: ErrorContext): string[] {
  const code = codeName(err.code);
  if (!fromServer(err)) {
    if (err.code === Code.UNAVAILABLE) {
      return [`error: cannot reach ${ctx.endpoint.service} at ${ctx.endpoint.display} (${code})${unreachableHint(ctx.endpoint)}`];
    }
    if (err.code === Code.DEADLINE_EXCEEDED) {
      return [
        `error: no answer from ${ctx.endpoint.service} at ${ctx.endpoint.display} within ${ctx.timeoutMs / 1000} s (${code}); a change may still complete — check with get, or raise --timeout`,
      ];
    }
  }
  const head = `error: ${code}${err.reason && err.reason !== code ? ` (${err.reason})` : ""}`;
  if (err.violations.length > 0) return err.violations.map((v) => `${head}: ${v.field}: ${v.description}`);
  const requestId = err.code === Code.INTERNAL || err.code === Code.UNKNOWN || err.code === Code.DEADLINE_EXCEEDED ? ` (request id ${ctx.requestId})` : "";
  return [`${head}: ${err.message}${requestId}`];
}
