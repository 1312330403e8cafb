import { AgentErrorCode, type AgentErrorBody } from "./protocol";

/**
 * A command that the agent answers with an HTTP error. This is the agent's wire-level failure
 * (an HTTP status + `{ error: { code, message } }`), not a Stratum error: the simulator stands in
 * for a non-Stratum program, and the management plane's agent client is what turns these answers
 * into `StratumError`s.
 */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  toBody(): AgentErrorBody {
    return { error: { code: this.code, message: this.message } };
  }

  static badRequest(code: string, message: string): CommandError {
    return new CommandError(400, code, message);
  }

  static notFound(code: string, message: string): CommandError {
    return new CommandError(404, code, message);
  }

  static conflict(code: string, message: string): CommandError {
    return new CommandError(409, code, message);
  }

  static missingField(field: string): CommandError {
    return new CommandError(400, AgentErrorCode.MISSING_FIELD, `missing field: ${field}`);
  }

  static invalidField(field: string, expected: string): CommandError {
    return new CommandError(400, AgentErrorCode.INVALID_FIELD, `invalid field: ${field} must be ${expected}`);
  }
}
