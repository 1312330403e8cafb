/**
 * gRPC server reflection, v1 and v1alpha, built from the protobuf-es descriptors the server was
 * given. With it, grpcurl, buf curl, Postman or grpcui can call any Stratum service without the
 * .proto files: an operator debugging a replica needs only its address.
 *
 * v1alpha is the same protocol under an older package name; grpcurl before 1.8.8, Python grpcio
 * reflection clients and some IDEs only speak it, so both are served by one implementation
 * (requests and responses are converted through their identical wire format).
 */
import { create, fromBinary, toBinary, type DescFile, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { file_google_rpc_error_details } from "@stratum/proto/google/rpc/error_details_pb";
import { file_google_rpc_status } from "@stratum/proto/google/rpc/status_pb";
import * as v1 from "@stratum/proto/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@stratum/proto/grpc/reflection/v1alpha/reflection_pb";
import { Code } from "@stratum/core";
import { implement, type ServiceRegistration } from "./service";

type Response = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;

/** Lookup tables over every file that declares a served service, and their transitive imports. */
export class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly encoded = new Map<string, Uint8Array>();
  readonly serviceNames: readonly string[];

  /** `extraFiles`: files to describe although no served service imports them (e.g. error detail types). */
  constructor(services: readonly DescService[], extraFiles: readonly DescFile[] = []) {
    this.serviceNames = services.map((s) => s.typeName);
    for (const service of services) this.addFile(service.file);
    for (const file of extraFiles) this.addFile(file);
  }

  private addFile(file: DescFile): void {
    const name = file.proto.name;
    if (this.files.has(name)) return;
    this.files.set(name, file);
    for (const type of nestedTypes(file)) {
      this.symbols.set(type.typeName, file);
      switch (type.kind) {
        case "service":
          for (const method of type.methods) this.symbols.set(`${type.typeName}.${method.name}`, file);
          break;
        case "message":
          for (const field of type.fields) this.symbols.set(`${type.typeName}.${field.name}`, file);
          for (const oneof of type.oneofs) this.symbols.set(`${type.typeName}.${oneof.name}`, file);
          break;
        case "enum": {
          // Enum values live in the scope that encloses the enum (C++ scoping rules).
          const scope = type.typeName.slice(0, Math.max(0, type.typeName.lastIndexOf(".")));
          for (const value of type.values) this.symbols.set(scope ? `${scope}.${value.name}` : value.name, file);
          break;
        }
        case "extension": {
          let byNumber = this.extensions.get(type.extendee.typeName);
          if (!byNumber) this.extensions.set(type.extendee.typeName, (byNumber = new Map()));
          byNumber.set(type.number, file);
          break;
        }
      }
    }
    for (const dep of file.dependencies) this.addFile(dep);
  }

  fileByName(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.startsWith(".") ? symbol.slice(1) : symbol);
  }

  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    return this.extensions.get(extendee)?.get(number);
  }

  extensionNumbers(extendee: string): number[] | undefined {
    const target = this.fileContainingSymbol(extendee);
    if (!target) return undefined;
    return [...(this.extensions.get(extendee)?.keys() ?? [])];
  }

  /** Serialized FileDescriptorProto, as reflection sends it. */
  encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file.proto.name);
    if (!bytes) this.encoded.set(file.proto.name, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  }

  /**
   * `file` first, then its transitive imports that this stream has not been sent yet (the
   * protocol allows leaving those out; clients cache what they got earlier on the stream).
   */
  withDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
    const out = [this.encode(file)];
    sent.add(file.proto.name);
    const queue = [...file.dependencies];
    for (let dep = queue.shift(); dep; dep = queue.shift()) {
      if (sent.has(dep.proto.name)) continue;
      sent.add(dep.proto.name);
      out.push(this.encode(dep));
      queue.push(...dep.dependencies);
    }
    return out;
  }
}

function notFound(message: string): Response["messageResponse"] {
  return { case: "errorResponse", value: { errorCode: Code.NOT_FOUND, errorMessage: message } };
}

/** The answer to one reflection request. `sent` tracks the files already sent on this stream. */
export function answer(index: DescriptorIndex, req: v1.ServerReflectionRequest, sent: Set<string>): Response {
  const files = (file: DescFile | undefined, what: string): Response["messageResponse"] =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(file, sent) } } : notFound(what);
  const r = req.messageRequest;
  let messageResponse: Response["messageResponse"];
  switch (r.case) {
    case "fileByFilename":
      messageResponse = files(index.fileByName(r.value), `file "${r.value}" not found`);
      break;
    case "fileContainingSymbol":
      messageResponse = files(index.fileContainingSymbol(r.value), `symbol "${r.value}" not found`);
      break;
    case "fileContainingExtension":
      messageResponse = files(
        index.fileContainingExtension(r.value.containingType, r.value.extensionNumber),
        `extension ${r.value.extensionNumber} of "${r.value.containingType}" not found`,
      );
      break;
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      messageResponse = numbers
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } }
        : notFound(`type "${r.value}" not found`);
      break;
    }
    case "listServices":
      messageResponse = { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } };
      break;
    default:
      messageResponse = { case: "errorResponse", value: { errorCode: Code.INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
  }
  return { validHost: req.host, originalRequest: req, messageResponse };
}

/** The reflection service names, to include them in what reflection itself lists. */
export const REFLECTION_SERVICES: readonly DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

/**
 * Files described even though no service imports them: the error detail types Stratum sends in
 * `grpc-status-details-bin`, so that grpcurl and buf curl can decode ErrorInfo and BadRequest
 * from a Stratum error by reflection alone.
 */
export const ERROR_DETAIL_FILES: readonly DescFile[] = [file_google_rpc_status, file_google_rpc_error_details];

/**
 * Reflection v1 and v1alpha over `services`, which should be every service the server serves
 * (including health and reflection themselves, as grpc-go lists them).
 */
export function reflectionServices(services: readonly DescService[], extraFiles: readonly DescFile[] = ERROR_DETAIL_FILES): ServiceRegistration[] {
  const index = new DescriptorIndex(services, extraFiles);
  return [
    implement(v1.ServerReflection, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const req of requests) yield answer(index, req, sent);
      },
    }),
    implement(v1alpha.ServerReflection, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const alphaReq of requests) {
          const req = fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, alphaReq));
          const res = create(v1.ServerReflectionResponseSchema, answer(index, req, sent));
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(v1.ServerReflectionResponseSchema, res));
        }
      },
    }),
  ];
}
