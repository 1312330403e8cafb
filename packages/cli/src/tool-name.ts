/**
 * The tool's name, as messages tell the user what to run next. In a module of its own because
 * both help (which lists the commands) and the commands' own messages need it.
 */
export const TOOL_NAME = "stratumctl";
