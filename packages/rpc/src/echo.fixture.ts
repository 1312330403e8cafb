/**
 * Test fixture: an EchoService implementation that records what its handlers saw, and helpers to
 * start servers and clients. Used only by this package's tests.
 */
import { expect } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { ConcatService, EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { closeClient, createClient, type Client, type ClientOptions } from "./client";
import { Code } from "@stratum/core";
import type { HandlerContext } from "./context";
import { StratumError } from "@stratum/core";
import { createLogger, type Logger } from "@stratum/core";
import { createServer, type ServerOptions, type StratumServer } from "./server";
import { implement, type ServiceImpl } from "./service";

/** What a Sleep handler saw: its context, and a promise of its signal's abort reason. */
export interface SleepObservation {
  readonly ctx: HandlerContext;
  readonly aborted: Promise<unknown>;
}

export interface EchoState {
  readonly sleeps: SleepObservation[];
  readonly lists: Map<string, string[]>;
  /** Resolves on the next Sleep call. */
  nextSleep(): Promise<SleepObservation>;
  /** Closes the clients Forward opened. */
  close(): void;
}

export function echoImpl(): { impl: ServiceImpl<typeof EchoService>; state: EchoState } {
  const waiters: ((o: SleepObservation) => void)[] = [];
  const downstream = new Map<string, Client<typeof EchoService>>();
  const state: EchoState = {
    sleeps: [],
    lists: new Map(),
    nextSleep: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => {
      for (const c of downstream.values()) closeClient(c);
      downstream.clear();
    },
  };

  const impl: ServiceImpl<typeof EchoService> = {
    echo(req, ctx) {
      return { message: req.message, payload: req.payload, requestId: ctx.requestId };
    },

    async *echoStream(req, ctx) {
      const interval = req.interval ? durationMs(req.interval) : 0;
      for (let index = 0; index < req.count; index++) {
        if (index > 0 && interval > 0) await sleep(interval, undefined, { signal: ctx.signal });
        yield { message: req.message, index };
      }
    },

    fail(req) {
      if (req.code === Code.OK) throw new Error(req.message); // not a StratumError: must become INTERNAL
      throw new StratumError(req.code as Code, req.message, {
        reason: req.reason,
        resources: req.resources,
        violations: req.violations.map((v) => ({ field: v.field, description: v.description })),
      });
    },

    async sleep(req, ctx) {
      const observation: SleepObservation = {
        ctx,
        aborted: new Promise((resolve) => {
          if (ctx.signal.aborted) resolve(ctx.signal.reason);
          else ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason), { once: true });
        }),
      };
      state.sleeps.push(observation);
      waiters.splice(0).forEach((w) => w(observation));
      const remaining = ctx.timeRemaining();
      await sleep(req.duration ? durationMs(req.duration) : 0, undefined, { signal: ctx.signal });
      return {
        requestId: ctx.requestId,
        ...(remaining === undefined ? {} : { deadlineRemaining: create(DurationSchema, durationFromMs(remaining)) }),
      };
    },

    async forward(req, ctx) {
      let client = downstream.get(req.target);
      if (!client) downstream.set(req.target, (client = createClient(EchoService, req.target)));
      const response = await client.sleep(req.sleep ?? {}, { parent: ctx });
      return { downstream: response };
    },

    append(req) {
      const list = state.lists.get(req.key) ?? [];
      list.push(req.value);
      state.lists.set(req.key, list);
      return { length: list.length };
    },
  };
  return { impl, state };
}

export const concatImpl: ServiceImpl<typeof ConcatService> = {
  async concat(requests) {
    const parts: string[] = [];
    for await (const req of requests) parts.push(req.message);
    return { message: parts.join(""), count: parts.length };
  },
};

/** Handlers a test may replace: any EchoService method, and ConcatService's `concat`. */
export type Overrides = Partial<ServiceImpl<typeof EchoService>> & Partial<ServiceImpl<typeof ConcatService>>;

/** A logger that keeps its lines in memory (parsed), for assertions. */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { logger: createLogger({}, { level: "debug", sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }), lines };
}

/** Tracks servers and clients so a test file can close them all in afterEach. */
export class Harness {
  private readonly servers: (StratumServer & { state: EchoState })[] = [];
  private readonly clients: object[] = [];

  async server(overrides: Overrides = {}, options: Partial<ServerOptions> = {}): Promise<StratumServer & { state: EchoState; lines: Record<string, unknown>[] }> {
    const base = echoImpl();
    const { concat = concatImpl.concat, ...impl } = overrides;
    const { logger, lines } = memoryLogger();
    const server = await createServer({
      host: "127.0.0.1",
      port: 0,
      logger,
      services: [implement(EchoService, { ...base.impl, ...impl }), implement(ConcatService, { concat })],
      ...options,
    });
    const tracked = Object.assign(server, { state: base.state, lines });
    this.servers.push(tracked);
    return tracked;
  }

  client(target: string, options: ClientOptions = {}): Client<typeof EchoService> {
    return this.track(createClient(EchoService, target, options));
  }

  concatClient(target: string, options: ClientOptions = {}): Client<typeof ConcatService> {
    return this.track(createClient(ConcatService, target, options));
  }

  track<C extends object>(client: C): C {
    this.clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    for (const c of this.clients.splice(0)) closeClient(c);
    await Promise.all(
      this.servers.splice(0).map(async (s) => {
        s.state.close();
        await s.shutdown(200);
      }),
    );
  }
}

/** `promise`, or a rejection after `ms`: a missing behaviour fails a test fast instead of at the test timeout. */
export function within<T>(promise: Promise<T>, ms = 5_000, what = "promise"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The StratumError a call failed with; fails the test if it succeeded or failed otherwise. */
export async function rejection(p: Promise<unknown>): Promise<StratumError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "call should have failed").toBeInstanceOf(StratumError);
  return err as StratumError;
}
