import { status as GrpcStatus } from "@grpc/grpc-js";

/** gRPC status names the emulator uses (fault injection accepts any of `@grpc/grpc-js`'s `status`). */
export type GrpcStatusName = keyof typeof GrpcStatus;

/**
 * A failure with a precise gRPC status. Handlers throw it; the service wrapper sends it. The SDK silently
 * retries INTERNAL and UNKNOWN, so every expected failure must use a precise code.
 */
export class GrpcError extends Error {
  override readonly name = "GrpcError";
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message);
  }
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
