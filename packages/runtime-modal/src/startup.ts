import { type Logger, RuntimeError } from "@agent-runtime/runtime-core";
import {
  type App,
  type Image,
  type ModalClient,
  type Sandbox,
  type SandboxCreateParams,
  SandboxTimeoutError,
  type Tunnel,
} from "modal";
import { type Deadline, retryDelayMs, TUNNEL_POLL_MS } from "./deadline.js";
import { type RetrySettings, sleep, toModalRuntimeError } from "./errors.js";
import { TAGS } from "./naming.js";

/** What creating one sandbox needs from its runtime and provider. */
export interface CreateContext {
  client: ModalClient;
  appName: string;
  environment: string | undefined;
  retry: RetrySettings;
  logger: Logger;
  sessionId: string;
  /** Stops a sandbox that came too late or is left over (errors logged, not thrown). */
  terminate(sb: Sandbox, reason: string): Promise<void>;
}

/**
 * Creates the sandbox within `deadline`. RATE_LIMITED (Modal's RESOURCE_EXHAUSTED: no capacity, or asked to slow
 * down past the SDK's `maxThrottleWaitSecs`) is retried with exponential backoff until the deadline, UNAVAILABLE
 * up to `retry.maxAttempts`. Retrying is safe only for a named (V1) sandbox: a create that Modal committed before
 * failing comes back as ALREADY_EXISTS and is adopted when its nonce tag is ours; a V2 create (no name) is not
 * retried. At the deadline a named sandbox is looked up and stopped at once (so nothing waits for capacity or
 * bills for it), and a create that returns later anyway is terminated.
 */
export async function createSandbox(
  ctx: CreateContext,
  app: App,
  image: Image,
  params: SandboxCreateParams,
  nonce: string,
  deadline: Deadline,
): Promise<Sandbox> {
  const late = "Modal did not create the sandbox";
  let last: RuntimeError | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await deadline.race(ctx.client.sandboxes.create(app, image, params), "create", late, (sb) => {
        // Modal committed the sandbox after we gave up on it: stop it so nothing is left running.
        void ctx.terminate(sb, "created after the deadline");
      });
    } catch (raw) {
      const err = toModalRuntimeError(raw, "create", "Creating the Modal sandbox failed");
      const leftBehind =
        (err.code === "TIMEOUT" && err.details?.step === "create") || err.code === "CANCELLED";
      if (leftBehind && params.name !== undefined) {
        void stopNamed(ctx, params.name, nonce);
      }
      if (err.code === "ALREADY_EXISTS" && attempt > 1 && params.name !== undefined) {
        const adopted = await adopt(ctx, params.name, nonce);
        if (adopted) return adopted;
      }
      if (err.code === "ALREADY_EXISTS") {
        throw new RuntimeError(
          "ALREADY_EXISTS",
          `A sandbox for session "${ctx.sessionId}" is already running in the Modal App "${ctx.appName}" (name ${params.name}); attach to it (provider.attachSession) or close it first.`,
          { cause: err },
        );
      }
      const delay =
        params.name === undefined ? undefined : retryDelayMs(err, attempt, ctx.retry, deadline.remainingMs());
      if (delay === undefined) throw deadline.gaveUp(err, last);
      last = err;
      ctx.logger.warn("creating the Modal sandbox failed; retrying", {
        sessionId: ctx.sessionId,
        attempt,
        code: err.code,
        delayMs: Math.round(delay),
      });
      await sleep(delay);
    }
  }
}

/** The sandbox named `name` when its nonce tag is ours (a create of this runtime that Modal committed). */
async function adopt(ctx: CreateContext, name: string, nonce: string): Promise<Sandbox | undefined> {
  try {
    const sb = await ctx.client.sandboxes.fromName(
      ctx.appName,
      name,
      ctx.environment ? { environment: ctx.environment } : {},
    );
    const tags = await sb.getTags();
    return tags[TAGS.keyNonce] === nonce ? sb : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the named sandbox of a create that missed its deadline (it may be queued for capacity), if it is ours. */
async function stopNamed(ctx: CreateContext, name: string, nonce: string): Promise<void> {
  const sb = await adopt(ctx, name, nonce);
  if (sb) await ctx.terminate(sb, "not created within the deadline");
}

/**
 * The sandbox's tunnels within `deadline`, asked for in pieces of at most {@link TUNNEL_POLL_MS} (what both Modal
 * SDKs use): a piece that ends without tunnels (`SandboxTimeoutError`) is asked again until the deadline; transient
 * failures are retried as {@link retryDelayMs} says.
 */
export async function waitForTunnels(
  sb: Pick<Sandbox, "sandboxId" | "tunnels">,
  deadline: Deadline,
  retry: RetrySettings,
): Promise<Record<number, Tunnel>> {
  const what = `Getting the tunnels of sandbox ${sb.sandboxId} failed`;
  const late = `Modal did not open the tunnels of sandbox ${sb.sandboxId}`;
  let last: RuntimeError | undefined;
  for (let attempt = 1; ; attempt++) {
    const pieceMs = Math.max(1000, Math.min(TUNNEL_POLL_MS, deadline.remainingMs()));
    try {
      return await deadline.race(sb.tunnels(pieceMs), "tunnels", late);
    } catch (raw) {
      if (raw instanceof SandboxTimeoutError) {
        if (deadline.remainingMs() > 0) continue;
        throw deadline.timeoutError("tunnels", late);
      }
      const err = toModalRuntimeError(raw, "tunnels", what);
      const delay = retryDelayMs(err, attempt, retry, deadline.remainingMs());
      if (delay === undefined) throw deadline.gaveUp(err, last);
      last = err;
      await sleep(delay);
    }
  }
}
