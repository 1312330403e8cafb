/**
 * Binary (de)serialization of protobuf-es messages for grpc-js, and the checks that run on every
 * decoded request before a handler sees it.
 */
import { ScalarType, fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { Code } from "@stratum/core";
import { StratumError, type FieldViolation } from "@stratum/core";

export function serializer(schema: DescMessage): (message: Message) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * A plain Uint8Array view of grpc-js' Buffer: `bytes` fields are subarrays of the input, and they
 * should be Uint8Array like everywhere else in protobuf-es, not Buffer (whose equality,
 * `toJSON` and `slice` differ).
 */
function view(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function deserializer(schema: DescMessage): (bytes: Buffer) => Message {
  return (bytes) => fromBinary(schema, view(bytes));
}

/**
 * What the lenient request deserializer yields for bytes that are not a valid message. grpc-js
 * answers a throwing deserializer with INTERNAL "Error deserializing request", which blames the
 * server for the client's bytes; the handler wrapper turns this marker into INVALID_ARGUMENT
 * naming the message type instead (as connect-go and grpc-go do).
 */
export class MalformedMessage {
  constructor(
    readonly schema: DescMessage,
    readonly error: unknown,
  ) {}

  toError(): StratumError {
    const why = this.error instanceof Error ? this.error.message : String(this.error);
    return new StratumError(Code.INVALID_ARGUMENT, `malformed request: cannot decode ${this.schema.typeName}: ${why}`, {
      reason: "MALFORMED_REQUEST",
      cause: this.error,
    });
  }
}

export function lenientDeserializer(schema: DescMessage): (bytes: Buffer) => Message | MalformedMessage {
  return (bytes) => {
    try {
      return fromBinary(schema, view(bytes));
    } catch (err) {
      return new MalformedMessage(schema, err);
    }
  };
}

/**
 * Field violations for every field the server's schema does not know, anywhere in the message.
 *
 * Protobuf normally keeps unknown fields and lets the handler ignore them. For a control plane
 * that is how a request loses an instruction without anyone noticing: a client built from a newer
 * proto sends e.g. `cancel_backup_job_uuids`, an older replica drops it and migrates anyway. So
 * Stratum servers reject them with INVALID_ARGUMENT (the field is named by number, since the
 * server has no name for it), and the caller learns that this server cannot honour the request.
 */
export function unknownFieldViolations(schema: DescMessage, message: Message): FieldViolation[] {
  const out: FieldViolation[] = [];
  collectUnknown(reflect(schema, message as never), "", out);
  return out;
}

function join(prefix: string, segment: string): string {
  return prefix ? `${prefix}.${segment}` : segment;
}

function collectUnknown(message: ReflectMessage, path: string, out: FieldViolation[]): void {
  for (const unknown of message.getUnknown() ?? []) {
    out.push({
      field: join(path, `#${unknown.no}`),
      description: `unknown field number ${unknown.no} in ${message.desc.typeName}; this server's schema does not have it (client built from a newer proto?)`,
    });
  }
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const fieldPath = join(path, field.name);
    if (field.fieldKind === "message") {
      collectUnknown(message.get(field), fieldPath, out);
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      let i = 0;
      for (const item of message.get(field)) collectUnknown(item as ReflectMessage, `${fieldPath}[${i++}]`, out);
    } else if (field.fieldKind === "map" && field.mapKind === "message") {
      for (const [key, value] of message.get(field)) collectUnknown(value as ReflectMessage, `${fieldPath}[${JSON.stringify(String(key))}]`, out);
    }
  }
}

/**
 * Field violations for every string in the request that contains NUL (U+0000), anywhere: nested
 * messages, list items, map keys and values.
 *
 * NUL is valid UTF-8, so protobuf accepts it, but PostgreSQL cannot store it in text: such a
 * request would fail deep in a handler with INTERNAL ("invalid byte sequence") after part of the
 * work is done. No legitimate name, URL or key contains it, so it is refused up front as the
 * caller's mistake, naming the field.
 */
export function nulStringViolations(schema: DescMessage, message: Message): FieldViolation[] {
  if (!mayHoldStrings(schema)) return [];
  const out: FieldViolation[] = [];
  collectNul(reflect(schema, message as never), "", out);
  return out;
}

const NUL_DESCRIPTION = "must not contain the NUL character (U+0000)";
const NUL_KEY_DESCRIPTION = "map key must not contain the NUL character (U+0000)";

/**
 * Whether a message of this type can contain a string anywhere, so the walk skips the (many)
 * subtrees that cannot. Cached per type; a recursive type is assumed to until proven otherwise.
 */
const holdsStrings = new WeakMap<DescMessage, boolean>();

function mayHoldStrings(desc: DescMessage): boolean {
  const known = holdsStrings.get(desc);
  if (known !== undefined) return known;
  holdsStrings.set(desc, true); // breaks cycles; refined below
  let result = false;
  for (const field of desc.fields) {
    if (fieldMayHoldStrings(field)) {
      result = true;
      break;
    }
  }
  holdsStrings.set(desc, result);
  return result;
}

function fieldMayHoldStrings(field: DescMessage["fields"][number]): boolean {
  switch (field.fieldKind) {
    case "scalar":
      return field.scalar === ScalarType.STRING;
    case "list":
      return field.listKind === "scalar" ? field.scalar === ScalarType.STRING : field.listKind === "message" && mayHoldStrings(field.message);
    case "map":
      return field.mapKey === ScalarType.STRING || (field.mapKind === "scalar" ? field.scalar === ScalarType.STRING : field.mapKind === "message" && mayHoldStrings(field.message));
    case "message":
      return mayHoldStrings(field.message);
    case "enum":
      return false;
  }
}

function collectNul(message: ReflectMessage, path: string, out: FieldViolation[]): void {
  for (const field of message.fields) {
    if (!fieldMayHoldStrings(field) || !message.isSet(field)) continue;
    const fieldPath = join(path, field.name);
    switch (field.fieldKind) {
      case "scalar":
        if ((message.get(field) as string).includes("\u0000")) out.push({ field: fieldPath, description: NUL_DESCRIPTION });
        break;
      case "message":
        collectNul(message.get(field), fieldPath, out);
        break;
      case "list": {
        let i = 0;
        for (const item of message.get(field)) {
          if (field.listKind === "scalar") {
            if ((item as string).includes("\u0000")) out.push({ field: `${fieldPath}[${i}]`, description: NUL_DESCRIPTION });
          } else {
            collectNul(item as ReflectMessage, `${fieldPath}[${i}]`, out);
          }
          i++;
        }
        break;
      }
      case "map":
        for (const [key, value] of message.get(field)) {
          const entryPath = `${fieldPath}[${JSON.stringify(String(key))}]`;
          if (typeof key === "string" && key.includes("\u0000")) out.push({ field: entryPath, description: NUL_KEY_DESCRIPTION });
          if (field.mapKind === "scalar") {
            if (typeof value === "string" && value.includes("\u0000")) out.push({ field: entryPath, description: NUL_DESCRIPTION });
          } else if (field.mapKind === "message") {
            collectNul(value as ReflectMessage, entryPath, out);
          }
        }
        break;
    }
  }
}
