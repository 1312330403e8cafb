import type { Path } from "@bufbuild/protobuf/reflect";
import { FailRequestSchema, FieldViolationSchema } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { describe, expect, it } from "vitest";
import { formatPath } from "./protovalidate";

describe("formatPath", () => {
  it("writes proto names, list indexes and quoted map keys", () => {
    const violations = FailRequestSchema.field.violations!;
    const resources = FailRequestSchema.field.resources!;
    expect(formatPath([violations, { kind: "list_sub", index: 3 }, FieldViolationSchema.field.description!] as Path)).toBe("violations[3].description");
    expect(formatPath([resources, { kind: "map_sub", key: 'a"b' }] as Path)).toBe('resources["a\\"b"]');
    expect(formatPath([resources, { kind: "map_sub", key: 7 }] as Path)).toBe("resources[7]");
  });
});
