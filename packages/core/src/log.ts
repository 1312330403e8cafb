/**
 * A tiny structured logger: one JSON object per line, `{"time","level","msg",...fields}`.
 *
 * Why not pino or console.log: every Stratum process must emit lines that a log pipeline can
 * index by `requestId`, `jobUuid`, `vmUuid`…, without pulling a dependency into every package.
 * Child loggers carry the ids of the work at hand, so a handler logs `ctx.log.info("vm started")`
 * and the line already names the service, method, request and resources. A line written inside
 * a work scope (`runWithWork`) also carries that work's `requestId` and fields, so code far from
 * the handler (a queued task, an agent client, a bus consumer) names the request it serves.
 */
import { currentWork } from "./work-context";

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (later fields win over earlier ones). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Lines below this level are dropped. Default: `STRATUM_LOG_LEVEL` or `info`. */
  level?: LogLevel;
  /** Where lines go (without the trailing newline). Default: stderr, so stdout stays free for program output. */
  sink?: (line: string) => void;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function isLevel(value: string | undefined): value is LogLevel {
  return value !== undefined && Object.hasOwn(LEVELS, value);
}

/** Process default level, from the environment so operators can turn on debug without a rebuild. */
export function defaultLogLevel(): LogLevel {
  const env = process.env["STRATUM_LOG_LEVEL"]?.toLowerCase();
  return isLevel(env) ? env : "info";
}

const stderrSink = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * Errors are not JSON-serializable (their own properties are not enumerable). Keep what an
 * operator needs: name, message, gRPC code/reason, stack and the cause chain.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const extra = err as Error & { code?: unknown; reason?: unknown; resources?: unknown; details?: unknown };
  if (extra.code !== undefined) out["code"] = extra.code;
  if (typeof extra.reason === "string") out["reason"] = extra.reason;
  if (extra.resources !== undefined && typeof extra.resources === "object") out["resources"] = extra.resources;
  if (typeof extra.details === "string") out["details"] = extra.details;
  if (err.stack) out["stack"] = err.stack;
  if (err.cause !== undefined && depth < 5) out["cause"] = serializeError(err.cause, depth + 1);
  return out;
}

function stringify(record: Record<string, unknown>): string {
  // Only an object that contains itself is circular; one referenced twice (a StratumError's
  // resources, logged beside the error) is printed twice. So track the ancestors, not all seen.
  const ancestors: object[] = [];
  return JSON.stringify(record, function (this: unknown, _key, raw: unknown) {
    let value = raw;
    if (typeof value === "bigint") return value.toString();
    if (value instanceof Error) value = serializeError(value);
    if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
    if (value !== null && typeof value === "object") {
      while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
      if (ancestors.includes(value)) return "[Circular]";
      ancestors.push(value);
    }
    return value;
  });
}

class JsonLogger implements Logger {
  constructor(
    private readonly fields: LogFields,
    private readonly threshold: number,
    private readonly sink: (line: string) => void,
  ) {}

  private write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (LEVELS[level] < this.threshold) return;
    const time = new Date().toISOString();
    // The work's ids come first so that the logger's and the line's own fields win over them:
    // a line about another request (a forwarded call) may name that one.
    const work = currentWork();
    const record =
      work === undefined
        ? { time, level, msg, ...this.fields, ...fields }
        : { time, level, msg, ...work.fields, ...(work.requestId === undefined ? undefined : { requestId: work.requestId }), ...this.fields, ...fields };
    // The three envelope keys always mean what the pipeline expects, whatever the fields say.
    record.time = time;
    record.level = level;
    record.msg = msg;
    let line: string;
    try {
      line = stringify(record);
    } catch (err) {
      line = stringify({ time: record.time, level, msg, logError: String(err) });
    }
    this.sink(line);
  }

  debug(msg: string, fields?: LogFields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write("error", msg, fields);
  }
  child(fields: LogFields): Logger {
    return new JsonLogger({ ...this.fields, ...fields }, this.threshold, this.sink);
  }
}

/** A logger whose lines all carry `fields`. */
export function createLogger(fields: LogFields = {}, options: LoggerOptions = {}): Logger {
  return new JsonLogger(fields, LEVELS[options.level ?? defaultLogLevel()], options.sink ?? stderrSink);
}

/** The process-wide root logger; derive per-component loggers with `log.child({ component })`. */
export const log: Logger = createLogger();
