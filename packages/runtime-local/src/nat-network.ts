import { spawn, spawnSync } from "node:child_process";
import type { Readable } from "node:stream";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { which } from "./sandbox-process.js";

/** The DNS forwarder slirp4netns offers inside the sandbox. */
export const NAT_NAMESERVER = "10.0.2.3";

let slirpFlags: string[] | undefined;
/** The hardening flags this slirp4netns supports (`--enable-sandbox`, `--enable-seccomp`), checked once. */
function hardeningFlags(slirp: string): string[] {
  if (slirpFlags === undefined) {
    const help = spawnSync(slirp, ["--help"], { encoding: "utf8", timeout: 5000 });
    const text = `${help.stdout ?? ""}${help.stderr ?? ""}`;
    slirpFlags = ["--enable-sandbox", "--enable-seccomp"].filter((flag) => text.includes(flag));
  }
  return slirpFlags;
}

/**
 * The command that starts slirp4netns. As root, `--enable-sandbox` (slirp4netns 1.2) unmounts mounts that are
 * shared with the host's mount namespace: every named network namespace under /run/netns (Podman's, `ip netns`)
 * vanished from the host when a sandbox's NAT started. Run as root, it therefore starts in a private mount
 * namespace of its own (`unshare --mount --propagation private`, which execs it: same pid), where its sandbox
 * unmounts only its own copies; without `unshare` it runs without `--enable-sandbox`.
 */
export function natCommand(slirp: string, args: readonly string[]): { file: string; args: string[] } {
  const flags = hardeningFlags(slirp);
  const root = process.getuid?.() === 0;
  const unshare = root && flags.includes("--enable-sandbox") ? which("unshare") : undefined;
  const hardening = root && !unshare ? flags.filter((f) => f !== "--enable-sandbox") : flags;
  const full = [...args.slice(0, -2), ...hardening, ...args.slice(-2)];
  if (unshare) return { file: unshare, args: ["--mount", "--propagation", "private", "--", slirp, ...full] };
  return { file: slirp, args: full };
}

/** The path of `slirp4netns`, or undefined when it is not installed. */
export function slirpPath(): string | undefined {
  return which("slirp4netns");
}

/** A user-mode NAT attached to a sandbox's network namespace. */
export interface NatNetwork {
  pid: number;
}

/**
 * Gives the network namespace of `targetPid` outbound access through slirp4netns with the host's loopback
 * disabled (so 10.0.2.2 does not reach host services). slirp4netns runs detached (it outlives a host
 * restart, as the sandbox does) and exits when `exitFd` (held only by the sandbox) reaches end of file, so
 * it never outlives the sandbox. Resolves once the interface is configured.
 */
export async function startNatNetwork(input: {
  targetPid: number;
  exitFd: Readable;
  logFd: number;
  timeoutMs: number;
}): Promise<NatNetwork> {
  const slirp = slirpPath();
  if (!slirp) {
    throw new RuntimeError(
      "UNSUPPORTED",
      'network: "egress" needs slirp4netns (apt-get install slirp4netns), or use network: "none".',
    );
  }
  const command = natCommand(slirp, [
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    "--exit-fd=3",
    "--ready-fd=4",
    String(input.targetPid),
    "tap0",
  ]);
  const child = spawn(command.file, command.args, {
    detached: true,
    stdio: ["ignore", input.logFd, input.logFd, input.exitFd, "pipe"],
  });
  child.unref();
  const ready = child.stdio[4] as Readable;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new RuntimeError(
              "TIMEOUT",
              `slirp4netns did not configure the network within ${input.timeoutMs} ms`,
            ),
          ),
        input.timeoutMs,
      );
      const done = (err?: Error) => {
        clearTimeout(timer);
        ready.removeAllListeners();
        child.removeListener("exit", onExit);
        if (err) reject(err);
        else resolve();
      };
      const onExit = (code: number | null, signal: string | null) =>
        done(
          new RuntimeError(
            "UNAVAILABLE",
            `slirp4netns exited (${signal ?? `code ${code}`}) before the sandbox's network was ready; see the server log.`,
          ),
        );
      ready.once("data", () => done());
      child.once("exit", onExit);
      child.once("error", (err) =>
        done(new RuntimeError("UNAVAILABLE", `slirp4netns could not start: ${err.message}`, { cause: err })),
      );
    });
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    throw err;
  } finally {
    ready.destroy();
  }
  if (child.pid === undefined) throw new RuntimeError("UNAVAILABLE", "slirp4netns could not start");
  return { pid: child.pid };
}
