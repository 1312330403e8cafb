/**
 * Writes `proto/buf/validate/validate.proto` from the descriptor that `@bufbuild/protovalidate`
 * embeds in its generated `validate_pb.js`.
 *
 * Why not copy the upstream file: this machine reaches no registry but npm, and the npm package
 * ships the compiled descriptor, not the .proto. Printing that descriptor back to proto source
 * gives a file that compiles to the very same descriptor the validator library reads its rules
 * with, so the vendored schema cannot drift from the runtime (`vendor-validate.test.ts` checks the
 * two are byte-identical). Comments are not part of a descriptor and are therefore not included;
 * the documented upstream file is bufbuild/protovalidate `proto/protovalidate/buf/validate/validate.proto`.
 *
 * Run after bumping `@bufbuild/protovalidate`:  pnpm --filter @stratum/proto vendor:validate
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getExtension, hasExtension, isFieldSet, type DescMessage, type Message } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FieldOptionsSchema,
  FileOptionsSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate, predefined, RuleSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

/** Version of the npm package the descriptor comes from (named in the vendored file's header). */
export function protovalidateVersion(): string {
  // The package's exports do not include package.json: read it from this package's node_modules.
  const pkgJson = fileURLToPath(new URL("../node_modules/@bufbuild/protovalidate/package.json", import.meta.url));
  return (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
}

const MAX_FIELD_NUMBER = 536_870_911;

const SCALAR: Partial<Record<FieldDescriptorProto_Type, string>> = {
  [FieldDescriptorProto_Type.DOUBLE]: "double",
  [FieldDescriptorProto_Type.FLOAT]: "float",
  [FieldDescriptorProto_Type.INT64]: "int64",
  [FieldDescriptorProto_Type.UINT64]: "uint64",
  [FieldDescriptorProto_Type.INT32]: "int32",
  [FieldDescriptorProto_Type.FIXED64]: "fixed64",
  [FieldDescriptorProto_Type.FIXED32]: "fixed32",
  [FieldDescriptorProto_Type.BOOL]: "bool",
  [FieldDescriptorProto_Type.STRING]: "string",
  [FieldDescriptorProto_Type.BYTES]: "bytes",
  [FieldDescriptorProto_Type.UINT32]: "uint32",
  [FieldDescriptorProto_Type.SFIXED32]: "sfixed32",
  [FieldDescriptorProto_Type.SFIXED64]: "sfixed64",
  [FieldDescriptorProto_Type.SINT32]: "sint32",
  [FieldDescriptorProto_Type.SINT64]: "sint64",
};

/** A proto string literal; protoc reads octal escapes, and UTF-8 as is. */
function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\${c.toString(8).padStart(3, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** `option x = y;` lines for the set, known fields of an options message (scalars only). */
function knownOptions(schema: DescMessage, options: Message): string[] {
  const out: string[] = [];
  for (const field of schema.fields) {
    if (!isFieldSet(options as never, field)) continue;
    if (field.fieldKind !== "scalar") throw new Error(`cannot print option ${field.name} of kind ${field.fieldKind}`);
    const value = (options as unknown as Record<string, unknown>)[field.localName];
    out.push(`${field.name} = ${typeof value === "string" ? quote(value) : String(value)}`);
  }
  return out;
}

function fieldType(f: FieldDescriptorProto): string {
  return SCALAR[f.type] ?? f.typeName;
}

function fieldOptions(f: FieldDescriptorProto): string {
  const opts: string[] = [];
  if (f.options) {
    opts.push(...knownOptions(FieldOptionsSchema, f.options));
    if (hasExtension(f.options, predefined)) {
      for (const rule of getExtension(f.options, predefined).cel) {
        const parts: string[] = [];
        if (isFieldSet(rule, RuleSchema.field.id)) parts.push(`id: ${quote(rule.id)}`);
        if (isFieldSet(rule, RuleSchema.field.message)) parts.push(`message: ${quote(rule.message)}`);
        if (isFieldSet(rule, RuleSchema.field.expression)) parts.push(`expression: ${quote(rule.expression)}`);
        opts.push(`(buf.validate.predefined).cel = {\n      ${parts.join("\n      ")}\n    }`);
      }
    }
    const others = (f.options.$unknown ?? []).filter((u) => u.no !== predefined.number);
    if (others.length > 0) throw new Error(`field ${f.name}: unknown options ${others.map((u) => u.no).join(", ")}`);
  }
  return opts.length === 0 ? "" : ` [\n    ${opts.join(",\n    ")}\n  ]`;
}

function fieldLine(f: FieldDescriptorProto, indent: string): string {
  // Members of a oneof have no label in the source.
  const label = f.label === FieldDescriptorProto_Label.REPEATED ? "repeated " : isInOneof(f) ? "" : "optional ";
  return `${indent}${label}${fieldType(f)} ${f.name} = ${f.number}${fieldOptions(f).replaceAll("\n", `\n${indent.slice(2)}`)};`;
}

/** oneof_index is proto2 optional: set means "in a oneof", even oneof 0. */
function isInOneof(f: FieldDescriptorProto): boolean {
  return isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex);
}

function ranges(list: readonly { start: number; end: number }[]): string {
  return list.map((r) => (r.end - 1 === r.start ? `${r.start}` : `${r.start} to ${r.end - 1 === MAX_FIELD_NUMBER ? "max" : r.end - 1}`)).join(", ");
}

function message(m: DescriptorProto): string[] {
  if (m.nestedType.length || m.enumType.length || m.extension.length || m.options) throw new Error(`message ${m.name}: nested declarations or options are not supported by this printer`);
  const lines = [`message ${m.name} {`];
  let openOneof: number | undefined;
  const seenOneofs = new Set<number>();
  for (const f of m.field) {
    const oneof = isInOneof(f) ? f.oneofIndex : undefined;
    if (oneof !== openOneof) {
      if (openOneof !== undefined) lines.push("  }");
      if (oneof !== undefined) {
        if (seenOneofs.has(oneof)) throw new Error(`message ${m.name}: oneof ${oneof} is not contiguous`);
        seenOneofs.add(oneof);
        lines.push(`  oneof ${m.oneofDecl[oneof]!.name} {`);
      }
      openOneof = oneof;
    }
    lines.push(fieldLine(f, oneof === undefined ? "  " : "    "));
  }
  if (openOneof !== undefined) lines.push("  }");
  if (m.extensionRange.length) lines.push(`  extensions ${ranges(m.extensionRange)};`);
  if (m.reservedRange.length) lines.push(`  reserved ${ranges(m.reservedRange)};`);
  if (m.reservedName.length) lines.push(`  reserved ${m.reservedName.map(quote).join(", ")};`);
  lines.push("}", "");
  return lines;
}

function enumeration(e: EnumDescriptorProto): string[] {
  if (e.options || e.value.some((v) => v.options)) throw new Error(`enum ${e.name}: options are not supported by this printer`);
  const lines = [`enum ${e.name} {`, ...e.value.map((v) => `  ${v.name} = ${v.number};`)];
  // Enum reserved ranges are inclusive in the descriptor, unlike message ones.
  if (e.reservedRange.length) lines.push(`  reserved ${e.reservedRange.map((r) => (r.end === r.start ? `${r.start}` : `${r.start} to ${r.end}`)).join(", ")};`);
  if (e.reservedName.length) lines.push(`  reserved ${e.reservedName.map(quote).join(", ")};`);
  return [...lines, "}", ""];
}

/** The proto source of `file`, which compiles back to the same descriptor. */
export function printValidateProto(file: FileDescriptorProto, version: string): string {
  if (file.syntax !== "" && file.syntax !== "proto2") throw new Error(`unsupported syntax ${file.syntax}`);
  const lines = [
    `// Vendored from @bufbuild/protovalidate ${version} (npm), Apache License 2.0, Copyright Buf Technologies, Inc.`,
    "// Printed by packages/proto/src/vendor-validate.ts from the descriptor the package embeds, so it",
    "// compiles to exactly the descriptor the validator reads rules with. Do not edit; re-run the script",
    "// after bumping the package. Documentation of every rule: bufbuild/protovalidate,",
    "// proto/protovalidate/buf/validate/validate.proto (comments are not part of a descriptor).",
    "",
    'syntax = "proto2";',
    "",
    `package ${file.package};`,
    "",
    ...file.dependency.map((d) => `import ${quote(d)};`),
    "",
    ...(file.options ? knownOptions(FileOptionsSchema, file.options).map((o) => `option ${o};`) : []),
    "",
  ];
  let group: string | undefined;
  for (const ext of file.extension) {
    if (ext.extendee !== group) {
      if (group !== undefined) lines.push("}", "");
      lines.push(`extend ${ext.extendee} {`);
      group = ext.extendee;
    }
    lines.push(fieldLine(ext, "  "));
  }
  if (group !== undefined) lines.push("}", "");
  for (const e of file.enumType) lines.push(...enumeration(e));
  for (const m of file.messageType) lines.push(...message(m));
  return `${lines.join("\n").trimEnd()}\n`;
}

/** Where the vendored file lives in the buf module. */
export const vendoredValidateProto: string = fileURLToPath(new URL("../../../proto/buf/validate/validate.proto", import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(vendoredValidateProto, printValidateProto(file_buf_validate_validate.proto, protovalidateVersion()));
  console.log(`wrote ${join("proto", "buf/validate/validate.proto")} from @bufbuild/protovalidate ${protovalidateVersion()}`);
}
