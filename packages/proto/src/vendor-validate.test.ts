import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { file_stratum_compute_v1_vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { afterAll, describe, expect, it } from "vitest";
import { bufBin, packageDir, protoDir } from "./index";
import { printValidateProto, protovalidateVersion, vendoredValidateProto } from "./vendor-validate";

const run = promisify(execFile);

describe("vendored buf/validate/validate.proto", () => {
  const temps: string[] = [];
  afterAll(async () => {
    await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
  });

  it("compiles to exactly the descriptor @bufbuild/protovalidate validates with", async () => {
    const out = await mkdtemp(join(tmpdir(), "stratum-validate-"));
    temps.push(out);
    const image = join(out, "validate.binpb");
    await run(bufBin, ["build", protoDir, "--path", vendoredValidateProto, "--exclude-imports", "--exclude-source-info", "-o", image], { cwd: packageDir });
    const set = fromBinary(FileDescriptorSetSchema, new Uint8Array(await readFile(image)));
    expect(set.file.map((f) => f.name)).toEqual(["buf/validate/validate.proto"]);
    const file = set.file[0]!;
    // Field 8042 is buf's own image metadata (buf.alpha.image.v1.ImageFileExtension), not part of the file.
    file.$unknown = file.$unknown?.filter((u) => u.no !== 8042);
    if (file.$unknown?.length === 0) delete file.$unknown;
    const compiled = toBinary(FileDescriptorProtoSchema, file);
    const shipped = toBinary(FileDescriptorProtoSchema, file_buf_validate_validate.proto);
    expect(Buffer.from(compiled).equals(Buffer.from(shipped)), "re-run `pnpm --filter @stratum/proto vendor:validate`").toBe(true);
  });

  it("is what the printer makes of the installed package (no hand edits)", async () => {
    const committed = await readFile(vendoredValidateProto, "utf8");
    expect(committed).toBe(printValidateProto(file_buf_validate_validate.proto, protovalidateVersion()));
  });

  it("is the one file descriptor our generated code links to, not a second copy", () => {
    // protovalidate finds rules through its own extension descriptors: a generated copy of
    // buf/validate would be a different object and its options would not be recognised.
    expect(file_stratum_compute_v1_vm.dependencies).toContain(file_buf_validate_validate);
  });
});
