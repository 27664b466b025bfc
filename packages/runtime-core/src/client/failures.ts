import { type ErrorCode, RuntimeError } from "../errors.js";
import { TransportError } from "./http.js";

function detailOf(body: Buffer): string {
  const text = body.toString("utf8");
  try {
    const json = JSON.parse(text) as { detail?: unknown; errors?: unknown };
    const detail = typeof json.detail === "string" ? json.detail : JSON.stringify(json.detail ?? json);
    return json.errors !== undefined
      ? `${detail}: ${typeof json.errors === "string" ? json.errors : JSON.stringify(json.errors)}`
      : detail;
  } catch {
    return text.slice(0, 500);
  }
}

/**
 * The one boundary where HTTP statuses and transport failures of the action server become runtime-core
 * error codes. `ready` says whether the server had answered before (refusals then mean DISCONNECTED).
 */
export function mapActionServerFailure(
  failure: { status: number; body: Buffer } | TransportError,
  context: { endpoint: string; ready: boolean; timeoutMs: number },
): RuntimeError {
  const where = `action server ${context.endpoint}`;
  if (failure instanceof TransportError) {
    const codes: Record<TransportError["kind"], ErrorCode> = {
      refused: context.ready ? "DISCONNECTED" : "UNAVAILABLE",
      reset: "DISCONNECTED",
      protocol: "DISCONNECTED",
      timeout: "TIMEOUT",
      aborted: "CANCELLED",
      other: "INTERNAL",
    };
    const hint =
      failure.kind === "timeout"
        ? ` The server did not answer within ${context.timeoutMs} ms; raise the action's timeoutMs or check the sandbox.`
        : failure.kind === "refused" || failure.kind === "reset" || failure.kind === "protocol"
          ? " The sandbox may have stopped; reconnect or create a new runtime."
          : "";
    return new RuntimeError(codes[failure.kind], `${where} failed: ${failure.message}.${hint}`, {
      cause: failure,
    });
  }
  const detail = detailOf(failure.body);
  const status = failure.status;
  let code: ErrorCode = "INTERNAL";
  let hint = "";
  if (status === 401 || status === 403) {
    code = "UNAUTHORIZED";
    hint = " Check the session API key of this runtime (the handle's sessionApiKey).";
  } else if (status === 404 || status === 502 || status === 504) {
    code = context.endpoint === "/download_files" && status === 404 ? "NOT_FOUND" : "DISCONNECTED";
  } else if (status === 503) code = "UNAVAILABLE";
  else if (status === 429) code = "RATE_LIMITED";
  else if (status === 400 || status === 413 || status === 422) code = "INVALID_ARGUMENT";
  return new RuntimeError(code, `${where} answered HTTP ${status}: ${detail}.${hint}`, {
    details: { status },
  });
}
