import { once } from "node:events";
import type { Logger } from "@agent-runtime/runtime-core";
import {
  status as GrpcStatus,
  Metadata,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { GrpcError, retryPolicyDetails } from "./grpc-errors.js";

/** What every handler gets besides its request. */
export interface CallContext {
  method: string;
  metadata: Metadata;
  /** Aborts when the client cancels or the emulator shuts down. */
  signal: AbortSignal;
}

/** A unary handler: request in, response out (throw {@link GrpcError} for a status). */
export type UnaryHandler = (request: unknown, ctx: CallContext) => Promise<object>;
/** A server-streaming handler: writes responses with `write` (which honours back-pressure). */
export type ServerStreamHandler = (
  request: unknown,
  ctx: CallContext,
  write: (message: object) => Promise<void>,
) => Promise<void>;
/** A client-streaming handler: reads the request messages, returns one response. */
export type ClientStreamHandler = (messages: AsyncIterable<unknown>, ctx: CallContext) => Promise<object>;

/** Handlers by gRPC method name. */
export interface Handlers {
  unary?: Record<string, UnaryHandler>;
  serverStream?: Record<string, ServerStreamHandler>;
  clientStream?: Record<string, ClientStreamHandler>;
}

/** Cross-cutting behaviour applied to every call before its handler. */
export interface ServiceHooks {
  /** Throws a GrpcError (UNAUTHENTICATED, injected faults) to reject the call. */
  before(method: string, metadata: Metadata, request: unknown): void;
  /** Aborted on shutdown: every in-flight call's signal follows it. */
  shutdown: AbortSignal;
  logger: Logger;
}

function toServiceError(
  err: unknown,
  method: string,
  logger: Logger,
): { code: GrpcStatus; details: string; metadata?: Metadata } {
  if (err instanceof GrpcError) {
    if (err.retryAfterSecs === undefined) return { code: err.code, details: err.message };
    const metadata = new Metadata();
    metadata.set("grpc-status-details-bin", retryPolicyDetails(err.code, err.message, err.retryAfterSecs));
    return { code: err.code, details: err.message, metadata };
  }
  // A bug: INTERNAL makes the SDK retry three times, then fail with this message.
  logger.error("modal-emulator: handler failed", {
    method,
    error: err instanceof Error ? err.message : String(err),
  });
  return { code: GrpcStatus.INTERNAL, details: `modal-emulator internal error in ${method}` };
}

function callSignal(
  call: { on(event: "cancelled", cb: () => void): unknown },
  shutdown: AbortSignal,
): AbortSignal {
  const controller = new AbortController();
  call.on("cancelled", () => controller.abort());
  return AbortSignal.any([controller.signal, shutdown]);
}

/** Builds a grpc-js service implementation from handlers; unknown methods answer UNIMPLEMENTED. */
export function buildService(
  definition: ServiceDefinition,
  handlers: Handlers,
  hooks: ServiceHooks,
): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(definition)) {
    const name = method.path.split("/").pop() ?? key;
    if (!method.requestStream && !method.responseStream) {
      const handler = handlers.unary?.[name];
      impl[key] = (call: ServerUnaryCall<unknown, object>, callback: sendUnaryData<object>) => {
        const signal = callSignal(call, hooks.shutdown);
        const ctx: CallContext = { method: name, metadata: call.metadata, signal };
        void (async () => {
          hooks.before(name, call.metadata, call.request);
          if (!handler)
            throw new GrpcError(GrpcStatus.UNIMPLEMENTED, `modal-emulator does not implement ${name}`);
          return handler(call.request, ctx);
        })().then(
          (response) => callback(null, response),
          (err: unknown) => callback(toServiceError(err, name, hooks.logger)),
        );
      };
    } else if (method.responseStream && !method.requestStream) {
      const handler = handlers.serverStream?.[name];
      impl[key] = (call: ServerWritableStream<unknown, object>) => {
        const signal = callSignal(call, hooks.shutdown);
        const ctx: CallContext = { method: name, metadata: call.metadata, signal };
        const write = async (message: object): Promise<void> => {
          if (signal.aborted) return;
          if (!call.write(message)) await Promise.race([once(call, "drain"), once(signal, "abort")]);
        };
        void (async () => {
          hooks.before(name, call.metadata, call.request);
          if (!handler)
            throw new GrpcError(GrpcStatus.UNIMPLEMENTED, `modal-emulator does not implement ${name}`);
          await handler(call.request, ctx, write);
        })().then(
          () => {
            if (!signal.aborted) call.end();
          },
          (err: unknown) => {
            if (!signal.aborted) call.emit("error", toServiceError(err, name, hooks.logger));
          },
        );
      };
    } else if (method.requestStream && !method.responseStream) {
      const handler = handlers.clientStream?.[name];
      impl[key] = (call: ServerReadableStream<unknown, object>, callback: sendUnaryData<object>) => {
        const signal = callSignal(call, hooks.shutdown);
        const ctx: CallContext = { method: name, metadata: call.metadata, signal };
        void (async () => {
          hooks.before(name, call.metadata, undefined);
          if (!handler)
            throw new GrpcError(GrpcStatus.UNIMPLEMENTED, `modal-emulator does not implement ${name}`);
          return handler(call as AsyncIterable<unknown>, ctx);
        })().then(
          (response) => callback(null, response),
          (err: unknown) => callback(toServiceError(err, name, hooks.logger)),
        );
      };
    }
  }
  return impl;
}
