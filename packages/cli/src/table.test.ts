import { describe, expect, it } from "vitest";
import { renderFields, renderTable } from "./table";

describe("renderTable", () => {
  it("aligns columns two spaces apart under upper-case headers, without trailing spaces", () => {
    const text = renderTable(["uuid", "name", "state"], [
      ["a1", "web-1", "Running"],
      ["b22222", "db", "Stopped"],
    ]);
    expect(text).toBe("UUID    NAME   STATE\n" + "a1      web-1  Running\n" + "b22222  db     Stopped\n");
  });

  it("widens a column to its widest cell, header included", () => {
    const lines = renderTable(["x", "agent url"], [["long-value", "u"]]).split("\n");
    expect(lines[0]).toBe("X           AGENT URL");
    expect(lines[1]).toBe("long-value  u");
  });

  it("shows empty cells as - so every row has the same number of fields", () => {
    const text = renderTable(["a", "b", "c"], [["1", "", "3"]]);
    expect(text.split("\n")[1]).toBe("1  -  3");
    expect(text.split("\n")[1]!.split(/\s+/)).toHaveLength(3);
  });

  it("keeps each row on one line when a value has newlines or tabs", () => {
    const text = renderTable(["name", "error"], [["vm", "agent said:\n\tboom"]]);
    expect(text.trimEnd().split("\n")).toHaveLength(2);
    expect(text).toContain("agent said: boom");
  });

  it("prints only the header for no rows", () => {
    expect(renderTable(["a", "b"], [])).toBe("A  B\n");
  });
});

describe("renderFields", () => {
  it("aligns values after the longest label", () => {
    expect(renderFields([["UUID", "u-1"], ["Last error", ""], ["State", "Running"]])).toBe(
      "UUID:        u-1\n" + "Last error:  -\n" + "State:       Running\n",
    );
  });
});
