import { status as GrpcStatus } from "@grpc/grpc-js";

/** gRPC status names the emulator uses (fault injection accepts any of `@grpc/grpc-js`'s `status`). */
export type GrpcStatusName = keyof typeof GrpcStatus;

/**
 * A failure with a precise gRPC status. Handlers throw it; the service wrapper sends it. The SDK silently
 * retries INTERNAL and UNKNOWN, so every expected failure must use a precise code.
 */
export class GrpcError extends Error {
  override readonly name = "GrpcError";
  /** Set for a throttle: sent as a `modal.client.RPCRetryPolicy` (see {@link retryPolicyDetails}). */
  readonly retryAfterSecs: number | undefined;
  constructor(
    readonly code: GrpcStatus,
    message: string,
    options: { retryAfterSecs?: number } = {},
  ) {
    super(message);
    this.retryAfterSecs = options.retryAfterSecs;
  }
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function lengthDelimited(tag: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), varint(payload.length), payload]);
}

/**
 * The `grpc-status-details-bin` trailer by which Modal asks a client to slow down: a `modal.client.RPCStatus
 * { code = 1; message = 2; repeated google.protobuf.Any details = 3 }` whose detail is a
 * `modal.client.RPCRetryPolicy { float retry_after_secs = 1 }`. modal@0.11.1 reads it in its retry middleware
 * (`getServerRetryPolicy`: a detail whose type URL ends in `/modal.client.RPCRetryPolicy`). Hand-encoded: the
 * two messages are not part of the served subset proto.
 */
export function retryPolicyDetails(code: GrpcStatus, message: string, retryAfterSecs: number): Buffer {
  const retryAfter = Buffer.alloc(4);
  retryAfter.writeFloatLE(retryAfterSecs);
  const policy = Buffer.concat([Buffer.from([0x0d]), retryAfter]); // field 1, fixed32
  const any = Buffer.concat([
    lengthDelimited(0x0a, Buffer.from("type.googleapis.com/modal.client.RPCRetryPolicy")),
    lengthDelimited(0x12, policy),
  ]);
  return Buffer.concat([
    Buffer.from([0x08]),
    varint(code),
    lengthDelimited(0x12, Buffer.from(message)),
    lengthDelimited(0x1a, any),
  ]);
}

/** NOT_FOUND: the SDK raises `NotFoundError`. */
export const notFound = (message: string): GrpcError => new GrpcError(GrpcStatus.NOT_FOUND, message);
/** ALREADY_EXISTS: the SDK raises `AlreadyExistsError`. */
export const alreadyExists = (message: string): GrpcError =>
  new GrpcError(GrpcStatus.ALREADY_EXISTS, message);
/** FAILED_PRECONDITION: valid call, wrong state. */
export const failedPrecondition = (message: string): GrpcError =>
  new GrpcError(GrpcStatus.FAILED_PRECONDITION, message);
/** INVALID_ARGUMENT: the SDK raises `InvalidError` in most places. */
export const invalidArgument = (message: string): GrpcError =>
  new GrpcError(GrpcStatus.INVALID_ARGUMENT, message);
/** UNAUTHENTICATED: missing or wrong credentials. */
export const unauthenticated = (message: string): GrpcError =>
  new GrpcError(GrpcStatus.UNAUTHENTICATED, message);

/** Parses a status given as a number or a name (`"UNAVAILABLE"`, `"unavailable"`, `14`). */
export function parseGrpcStatus(value: number | string): GrpcStatus | undefined {
  if (typeof value === "number")
    return Number.isInteger(value) && value >= 0 && value <= 16 ? value : undefined;
  if (/^\d+$/.test(value)) return parseGrpcStatus(Number(value));
  const key = value.toUpperCase() as GrpcStatusName;
  return key in GrpcStatus ? GrpcStatus[key] : undefined;
}
