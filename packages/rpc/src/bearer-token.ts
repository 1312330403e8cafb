import * as grpc from "@grpc/grpc-js";

/**
 * A client interceptor that sends `authorization: Bearer <token>` on every call: how a caller
 * authenticates to a service that has tenants (the broker). A metadata interceptor rather than
 * call credentials, because grpc-js refuses call credentials on the plain-text channels the
 * devstack and tests use.
 */
export function bearerToken(token: string): grpc.Interceptor {
  if (!/^[\x21-\x7e]+$/.test(token)) throw new TypeError("a bearer token is printable ASCII without spaces");
  return (options, next) =>
    new grpc.InterceptingCall(next(options), {
      start(metadata, listener, start) {
        metadata.set("authorization", `Bearer ${token}`);
        start(metadata, listener);
      },
    });
}
