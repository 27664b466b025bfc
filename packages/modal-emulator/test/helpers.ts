import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { ModalClient, type ModalClientParams } from "modal";
import type { ModalEmulator } from "../src/index.js";
import { loadModalProtos } from "../src/proto/load.js";

/** A client of `emulator`, in V2 mode (the SDK default) or V1 mode (`MODAL_SANDBOX_V2=0`). */
export function clientFor(
  emulator: ModalEmulator,
  mode: "v1" | "v2" = "v2",
  params: Omit<ModalClientParams, "tokenId" | "tokenSecret"> = {},
): ModalClient {
  // The SDK reads MODAL_SERVER_URL and MODAL_SANDBOX_V2 when a client is constructed.
  process.env["MODAL_SERVER_URL"] = emulator.serverUrl;
  if (mode === "v1") process.env["MODAL_SANDBOX_V2"] = "0";
  else delete process.env["MODAL_SANDBOX_V2"];
  try {
    return new ModalClient({ ...params, tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret });
  } finally {
    delete process.env["MODAL_SERVER_URL"];
    delete process.env["MODAL_SANDBOX_V2"];
  }
}

/**
 * `path` as a process in the sandbox sees it: the path itself under bwrap; with isolation "none" (no bubblewrap)
 * its place under the sandbox's root on the host, which is what `pwd` prints and what shell strings must name.
 */
export function seenInSandbox(emulator: ModalEmulator, sandboxId: string, path: string): string {
  if (emulator.isolation === "bwrap") return path;
  const summary = emulator.listSandboxes().find((s) => s.sandboxId === sandboxId);
  if (!summary) throw new Error(`no sandbox ${sandboxId}`);
  return join(summary.root, path);
}

/** Polls `fn` until it returns true or `timeoutMs` passes. */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** True when a process with `pid` exists. */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids whose command line contains `needle` (Linux /proc). */
export function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(needle)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * A raw gRPC client of an emulator's control plane, with its token: for what the SDK does not send (fields it
 * validates away, `include_logs_for_finished`) or does not show (`SandboxInfo.tags`).
 */
export class RawControlPlane {
  readonly #client: Client;
  readonly #metadata = new Metadata();
  readonly #dir: string;

  constructor(emulator: ModalEmulator) {
    this.#dir = mkdtempSync(join(tmpdir(), "modal-emulator-raw-"));
    const protos = loadModalProtos(this.#dir);
    this.#client = new protos.modalClient(
      emulator.serverUrl.replace("http://", ""),
      credentials.createInsecure(),
    );
    this.#metadata.set("x-modal-token-id", emulator.tokenId);
    this.#metadata.set("x-modal-token-secret", emulator.tokenSecret);
  }

  /** One unary call; rejects with the gRPC error (`code`, `details`). */
  unary<T = Record<string, unknown>>(method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      const fn = (this.#client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(this.#client, request, this.#metadata, (err: ServiceError | null, res: T) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** A server-streaming call, collected until it ends. */
  stream<T = Record<string, unknown>>(method: string, request: object): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const fn = (this.#client as unknown as Record<string, (r: object, m: Metadata) => NodeJS.EventEmitter>)[
        method
      ]!;
      const call = fn.call(this.#client, request, this.#metadata);
      const items: T[] = [];
      call.on("data", (item: T) => items.push(item));
      call.on("end", () => resolve(items));
      call.on("error", reject);
    });
  }

  close(): void {
    this.#client.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
