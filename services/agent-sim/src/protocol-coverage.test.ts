import { AGENT_COMMAND_NAMES } from "@stratum/agent-protocol";
import { expect, it } from "vitest";
import { defaultCommands } from "./index";

it("serves every command of the agent protocol, and nothing else by default", () => {
  expect(Object.keys(defaultCommands).sort()).toEqual([...AGENT_COMMAND_NAMES].sort());
});
