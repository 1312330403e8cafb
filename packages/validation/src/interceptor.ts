import type { DescMessage, Message } from "@bufbuild/protobuf";
import { StratumError } from "@stratum/core";
import type { ServerInterceptor } from "@stratum/rpc";
import { sharedValidator, type RequestValidator } from "./protovalidate";

/**
 * A server interceptor that checks every request against the rules its proto declares before
 * the handler runs, and answers one INVALID_ARGUMENT listing every violated field. Streamed
 * requests are checked one by one as the handler reads them. Put it after the interceptors that
 * must see every call (logging, metrics) and before routing, so a bad request is refused by the
 * replica that received it.
 */
export function validationInterceptor(validate: RequestValidator = sharedValidator()): ServerInterceptor {
  const check = (schema: DescMessage, message: Message): Message => {
    const violations = validate(schema, message);
    if (violations.length > 0) throw StratumError.invalidArgument(violations);
    return message;
  };
  return (next) => (call) => {
    const { method } = call;
    if (method.methodKind === "unary" || method.methodKind === "server_streaming") {
      check(method.input, call.request as Message);
      return next(call);
    }
    const requests = call.request as AsyncIterable<Message>;
    async function* checked(): AsyncGenerator<Message> {
      for await (const request of requests) yield check(method.input, request);
    }
    return next({ ...call, request: checked() });
  };
}
