import { actionServerBinPath } from "@agent-runtime/action-server";
import type { ModalEmulator } from "@agent-runtime/modal-emulator";
import { RuntimeError, toRuntimeError } from "@agent-runtime/runtime-core";
import { parseHostConfig } from "../config.js";
import type { ResolvedHostConfig } from "../options.js";
import { builtinRegistry, ensurePlugin } from "../plugins.js";
import type { ProgressStream } from "./progress.js";

/** A started emulator and the host configuration that points the modal runtime at it. */
export interface EmulatedModal {
  config: ResolvedHostConfig;
  serverUrl: string;
  close(): Promise<void>;
}

/**
 * The modal runtime's options against `emulator`: the host's action-server bundle as the sandbox's server (image
 * `node:24-bookworm-slim`, App `agent-host`), `options` over those, and the emulator's connection (URL, token, CA)
 * over all.
 */
export function emulatedModalOptions(
  emulator: Pick<ModalEmulator, "serverUrl" | "tokenId" | "tokenSecret" | "caCertPem">,
  options: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    image: "node:24-bookworm-slim",
    serverCommand: [process.execPath, actionServerBinPath()],
    appName: "agent-host",
    ...options,
    serverUrl: emulator.serverUrl,
    credentials: { tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret },
    caCertPem: emulator.caCertPem,
  };
}

/**
 * Starts modal-emulator in-process (loaded on demand, in strict mode) and returns `config` with the modal runtime
 * pointed at it: its URL, token and CA, and the host's action-server bundle as the sandbox's server (the emulator runs
 * sandboxes as local processes that see the host read-only, so image build steps do not apply). Options in the
 * config file win, except the connection. The runtime plugin is resolved first: a missing plugin fails before
 * anything starts.
 */
export async function startEmulatedModal(
  config: ResolvedHostConfig,
  out: ProgressStream,
): Promise<EmulatedModal> {
  if (config.runtime.plugin !== "modal") {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `--emulator emulates Modal; it needs runtime.plugin "modal", not "${config.runtime.plugin}".`,
    );
  }
  await ensurePlugin(builtinRegistry(), "runtime", "modal");
  let start: (options?: object) => Promise<ModalEmulator>;
  try {
    ({ startModalEmulator: start } = await import("@agent-runtime/modal-emulator"));
  } catch (cause) {
    throw toRuntimeError(
      cause,
      "UNSUPPORTED",
      `--emulator: @agent-runtime/modal-emulator cannot be loaded (${(cause as Error).message}).`,
    );
  }
  // Strict: the emulator fails where Modal is documented to (V2 limits, untagged list results, GPU types,
  // regions, name and tag caps), so a demo that passes here does not rely on a kinder Modal.
  const emulator = await start({ strict: true });
  try {
    const options = emulatedModalOptions(emulator, config.runtime.options);
    const emulated = parseHostConfig({ ...config, runtime: { plugin: "modal", options } });
    out.write(`modal-emulator: offline Modal on ${emulator.serverUrl}\n`);
    return { config: emulated, serverUrl: emulator.serverUrl, close: () => emulator.close() };
  } catch (err) {
    await emulator.close();
    throw err;
  }
}
