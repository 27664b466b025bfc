import { actionServerBinPath } from "@agent-runtime/action-server";
import { type Logger, type Redactor, RuntimeError } from "@agent-runtime/runtime-core";
import { ModalClient, type Logger as ModalLogger } from "modal";
import { assertModalCredentials, isLocalServerUrl, missingModalCredentialsError } from "./credentials.js";
import { maxThrottleWaitSecs } from "./deadline.js";
import { toModalRuntimeError } from "./errors.js";
import type { ResolvedModalRuntimeOptions } from "./options.js";

/**
 * Runs `fn` with some `process.env` variables set, then restores them. The SDK reads `MODAL_SERVER_URL` and
 * `MODAL_PROFILE` only in the `ModalClient` constructor (its `endpoint` parameter is not used), so this is the one
 * way to point one client at modal-emulator without changing the environment of the whole process.
 */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(vars)) {
    if (value === undefined) continue;
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  try {
    return fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

function sdkLogger(logger: Logger, redactor: Redactor): ModalLogger {
  // The SDK logs `message, key, value, key, value...`.
  const fields = (args: unknown[]): Record<string, unknown> | undefined => {
    if (args.length === 0) return undefined;
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < args.length; i += 2) out[String(args[i])] = args[i + 1];
    if (args.length % 2 === 1) out.extra = args[args.length - 1];
    return redactor.redactDeep(out);
  };
  return {
    debug: (message: string, ...args: unknown[]) =>
      logger.debug(`modal: ${redactor.redact(message)}`, fields(args)),
    info: (message: string, ...args: unknown[]) =>
      logger.info(`modal: ${redactor.redact(message)}`, fields(args)),
    warn: (message: string, ...args: unknown[]) =>
      logger.warn(`modal: ${redactor.redact(message)}`, fields(args)),
    error: (message: string, ...args: unknown[]) =>
      logger.error(`modal: ${redactor.redact(message)}`, fields(args)),
  };
}

/**
 * Creates the provider's one `ModalClient`: explicit credentials, else the SDK's lookup (environment, then
 * profile). Missing or malformed tokens throw UNAUTHORIZED with troubleshooting steps before any call is made.
 */
export function createModalClient(
  options: ResolvedModalRuntimeOptions,
  logger: Logger,
  redactor: Redactor,
): ModalClient {
  const creds = options.credentials?.reveal();
  let client: ModalClient;
  try {
    const env = {
      MODAL_SERVER_URL: options.serverUrl,
      MODAL_PROFILE: options.profile,
      // The SDK's own V1/V2 switch (`profile.sandboxV2`), read once by the constructor: see `sandboxApi`.
      MODAL_SANDBOX_V2: options.sandboxApi === "v2" ? "1" : "0",
    };
    client = withEnv(env, () => {
      if (creds) {
        assertModalCredentials({
          MODAL_TOKEN_ID: creds.tokenId,
          MODAL_TOKEN_SECRET: creds.tokenSecret,
          MODAL_SERVER_URL: process.env.MODAL_SERVER_URL,
        });
      }
      return new ModalClient({
        ...(creds ? { tokenId: creds.tokenId, tokenSecret: creds.tokenSecret } : {}),
        ...(options.environment ? { environment: options.environment } : {}),
        logger: sdkLogger(logger, redactor),
        logLevel: options.sdkLogLevel,
        // Unset, the SDK obeys Modal's requests to slow down without bound: bounded by the start deadline instead.
        maxThrottleWaitSecs: maxThrottleWaitSecs(options),
      });
    });
  } catch (err) {
    throw toModalRuntimeError(err, "client", "Creating the Modal client failed");
  }
  const profile = client.profile;
  if (profile.sandboxV2 !== (options.sandboxApi === "v2")) {
    throw new RuntimeError(
      "INTERNAL",
      `The modal SDK did not take sandboxApi "${options.sandboxApi}" (its MODAL_SANDBOX_V2 switch); check the installed modal version (runtime-modal needs modal@0.11.1).`,
    );
  }
  if (!creds) {
    const oauth = Boolean(profile.oauthRefreshToken);
    if (!oauth && (!profile.tokenId || !profile.tokenSecret)) {
      throw missingModalCredentialsError({
        tokenIdSet: Boolean(profile.tokenId),
        tokenSecretSet: Boolean(profile.tokenSecret),
        ...(options.profile ? { profile: options.profile } : {}),
      });
    }
    if (!oauth)
      assertModalCredentials({
        MODAL_TOKEN_ID: profile.tokenId,
        MODAL_TOKEN_SECRET: profile.tokenSecret,
        MODAL_SERVER_URL: profile.serverUrl,
      });
  }
  return client;
}

/** The server URL a client talks to (for messages and to tell modal-emulator apart). */
export function serverUrlOf(client: ModalClient): string {
  return client.profile.serverUrl;
}

/**
 * Against modal-emulator (a loopback server URL), sandboxes are processes on this machine that skip the
 * image's build steps, so the default image's server is not there. Without `serverCommand` and `image`, the
 * host's own action-server bundle is run instead (what agent-host's `--emulator` sets), so `--runtime modal`
 * against an emulator started elsewhere works as is. With a custom image, `hint` says what to set when the
 * start fails.
 */
export function emulatorServerCommand(
  options: ResolvedModalRuntimeOptions,
  serverUrl: string,
): { options: ResolvedModalRuntimeOptions; hint?: string } {
  if (!isLocalServerUrl(serverUrl) || options.serverCommand) return { options };
  const command = [process.execPath, actionServerBinPath()];
  if (options.image === undefined) return { options: { ...options, serverCommand: command } };
  return {
    options,
    hint: `The Modal server ${serverUrl} is a loopback address (modal-emulator), which runs the start command on this machine without the image's build steps, so the image's agent-runtime-action-server may not exist here: set the modal runtime option serverCommand to ${JSON.stringify(command)} (agent-host's --emulator does), or leave image unset.`,
  };
}
