/**
 * A mistake in how the CLI was invoked (unknown command or flag, missing or unparsable value).
 * It is a separate type from the server's StratumError because it means something different to a
 * script: exit code 2 ("fix the command line; nothing was sent") rather than 1 ("the server said
 * no"), and it is always raised before any RPC is made.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";

  /**
   * @param helpCommand the command whose `--help` explains the mistake, e.g. `vm create`;
   *   empty for the tool's own help.
   */
  constructor(
    message: string,
    readonly helpCommand = "",
  ) {
    super(message);
  }
}
