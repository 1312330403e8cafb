import { afterAll, beforeAll, expect, it } from "vitest";
import { runWithWork } from "@stratum/core";
import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { closeClient, createClient, type Client } from "./client";
import { createServer, type StratumServer } from "./server";
import { implement, type ServiceImpl } from "./service";

const unimplemented = () => {
  throw new Error("not in this test");
};
/** Echo answers with the request id the server saw. */
const impl: ServiceImpl<typeof EchoService> = {
  echo: (_req, ctx) => ({ message: ctx.requestId }),
  echoStream: unimplemented as never,
  fail: unimplemented,
  sleep: unimplemented,
  forward: unimplemented,
  append: unimplemented,
};

let server: StratumServer;
let client: Client<typeof EchoService>;
beforeAll(async () => {
  server = await createServer({ host: "127.0.0.1", port: 0, services: [implement(EchoService, impl)] });
  client = createClient(EchoService, server.address);
});
afterAll(async () => {
  closeClient(client);
  await server.shutdown();
});

it("a call made inside a work scope carries that work's request id", async () => {
  const res = await runWithWork({ requestId: "req-from-work" }, () => client.echo({ message: "x" }));
  expect(res.message).toBe("req-from-work");
});

it("an explicit parent wins over the work scope, and outside any scope a fresh id is made", async () => {
  const res = await runWithWork({ requestId: "req-from-work" }, () => client.echo({ message: "x" }, { parent: { requestId: "req-parent" } }));
  expect(res.message).toBe("req-parent");
  const fresh = await client.echo({ message: "x" });
  expect(fresh.message).not.toBe("req-from-work");
  expect(fresh.message.length).toBeGreaterThan(0);
});
