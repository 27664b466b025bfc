import { spawn } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
} from "node:fs";
import { dirname, join, posix } from "node:path";
import { RuntimeError } from "@agent-runtime/runtime-core";

/** How sandboxes are isolated (see the `isolation` option). */
export type IsolationMode = "bwrap" | "none";

/** Top-level directories that are always private to a sandbox (or provided by bwrap itself). */
const ALWAYS_PRIVATE = ["tmp", "root", "run"] as const;
const KERNEL_DIRS = ["proc", "dev", "sys"] as const;

/** A top-level entry of the host root that sandboxes see read-only. */
interface HostEntry {
  name: string;
  kind: "dir" | "file" | "symlink";
  target?: string;
}

/** Finds `name` on PATH. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The host view shared by every sandbox of one emulator: which top-level host entries pass through read-only,
 * and how sandbox paths map to host paths.
 */
export class HostView {
  readonly mode: IsolationMode;
  readonly #entries: HostEntry[];
  readonly #passthrough: ReadonlySet<string>;
  readonly bwrapPath: string;
  readonly nsenterPath: string;

  constructor(
    mode: IsolationMode,
    privateDirs: readonly string[],
    tools: { bwrap?: string; nsenter?: string } = {},
  ) {
    this.mode = mode;
    this.bwrapPath = tools.bwrap ?? "bwrap";
    this.nsenterPath = tools.nsenter ?? "nsenter";
    const hidden = new Set<string>([
      ...ALWAYS_PRIVATE,
      ...KERNEL_DIRS,
      ...privateDirs.map((d) => d.replace(/^\//, "")),
    ]);
    this.#entries = [];
    for (const name of readdirSync("/")) {
      if (hidden.has(name)) continue;
      const full = `/${name}`;
      try {
        const st = lstatSync(full);
        if (st.isSymbolicLink()) this.#entries.push({ name, kind: "symlink", target: readlinkSync(full) });
        else if (st.isDirectory()) this.#entries.push({ name, kind: "dir" });
        else if (st.isFile()) this.#entries.push({ name, kind: "file" });
      } catch {
        // vanished or unreadable: not shared
      }
    }
    this.#passthrough = new Set([...this.#entries.map((e) => e.name), ...KERNEL_DIRS]);
  }

  /** True when `sandboxPath` is in the read-only host view rather than the sandbox's own root. */
  isHostPath(sandboxPath: string): boolean {
    const top = posix.normalize(sandboxPath).split("/")[1] ?? "";
    return top !== "" && this.#passthrough.has(top);
  }

  /**
   * Maps an absolute sandbox path to the host: host-view paths stay as they are (read-only), everything else
   * lives under the sandbox root.
   */
  toHost(root: string, sandboxPath: string): { hostPath: string; readOnly: boolean } {
    const normalized = posix.normalize(posix.isAbsolute(sandboxPath) ? sandboxPath : `/${sandboxPath}`);
    if (this.isHostPath(normalized)) return { hostPath: normalized, readOnly: true };
    return { hostPath: join(root, normalized), readOnly: false };
  }

  /** Creates a sandbox root with its private top-level directories. */
  prepareRoot(root: string, privateDirs: readonly string[]): void {
    for (const dir of ["tmp", "root", "run", ...privateDirs.map((d) => d.replace(/^\//, ""))]) {
      mkdirSync(join(root, dir), { recursive: true, mode: dir === "tmp" ? 0o1777 : 0o755 });
    }
  }

  /**
   * bwrap arguments for a sandbox's main process: the sandbox root as `/`, the host view read-only, fresh
   * `/dev` and `/proc`, and private network, PID and IPC namespaces. Host files named in `argv` that live in a
   * private directory (say `/tmp/build/server.js`) get their directory bound read-only so host commands work.
   */
  bwrapArgs(root: string, workdir: string, argv: readonly string[], infoFd: number): string[] {
    const args = [
      "--die-with-parent",
      "--unshare-pid",
      "--unshare-net",
      "--unshare-ipc",
      "--bind",
      root,
      "/",
    ];
    for (const entry of this.#entries) {
      if (entry.kind === "symlink") args.push("--symlink", entry.target!, `/${entry.name}`);
      else args.push("--ro-bind", `/${entry.name}`, `/${entry.name}`);
    }
    args.push("--dev", "/dev", "--proc", "/proc", "--ro-bind-try", "/sys", "/sys");
    for (const dir of this.#hostDirsForArgv(argv)) args.push("--ro-bind", dir, dir);
    args.push("--chdir", workdir, "--info-fd", String(infoFd), "--", ...argv);
    return args;
  }

  /** nsenter arguments that run `argv` inside a sandbox's namespaces, in `workdir`. */
  nsenterArgs(childPid: number, workdir: string, argv: readonly string[]): string[] {
    return ["-t", String(childPid), "-m", "-n", "-p", "-i", "-r", "--", "env", "-C", workdir, "--", ...argv];
  }

  /**
   * Without bwrap: rewrites arguments that are absolute paths in the sandbox's private area (`/workspace`,
   * `--working-dir=/workspace`) to their place under the sandbox root. Paths inside shell strings cannot be
   * rewritten.
   */
  remapArg(root: string, arg: string): string {
    const match = /^(--?[A-Za-z0-9][\w-]*=)?(\/.*)$/.exec(arg);
    if (!match) return arg;
    const [, flag = "", path = ""] = match;
    if (this.isHostPath(path)) return arg;
    const mapped = this.toHost(root, path).hostPath;
    // As under bwrap (see bwrapArgs), a host file named in argv that lives in a private directory (say
    // /tmp/build/server.js) is used from the host, unless the sandbox has its own file there.
    if (!flag && !existsSync(mapped) && isFile(path)) return arg;
    return flag + mapped;
  }

  #hostDirsForArgv(argv: readonly string[]): string[] {
    const dirs = new Set<string>();
    for (const arg of argv) {
      if (!arg.startsWith("/") || this.isHostPath(arg)) continue;
      try {
        if (!statSync(arg).isFile()) continue;
      } catch {
        continue;
      }
      const dir = dirname(arg);
      // Never shadow a whole private top-level directory (such as /tmp) with the host's.
      dirs.add(dir.split("/").length > 2 ? dir : arg);
    }
    return [...dirs];
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Runs a command and resolves with its exit code and output. */
function run(
  file: string,
  args: readonly string[],
  timeoutMs = 5000,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.on("error", (err) => resolve({ code: -1, output: err.message }));
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
  });
}

/**
 * Decides the isolation mode: for `"bwrap"` and `"auto"`, probes that bwrap can create the namespaces and that
 * nsenter can join them (the full path exec takes). `"bwrap"` that fails throws UNSUPPORTED with the fix.
 */
export async function resolveIsolation(
  requested: "auto" | "bwrap" | "none",
): Promise<{ mode: IsolationMode; reason?: string; bwrap?: string; nsenter?: string }> {
  if (requested === "none") return { mode: "none" };
  const bwrap = findOnPath("bwrap");
  const nsenter = findOnPath("nsenter");
  let reason: string | undefined;
  if (process.platform !== "linux") reason = "sandbox namespaces need Linux";
  else if (!bwrap) reason = "bwrap is not on PATH (apt-get install bubblewrap)";
  else if (!nsenter) reason = "nsenter is not on PATH (apt-get install util-linux)";
  else {
    // Creating the namespaces and joining them with nsenter (what every exec does) both need privileges.
    const probe = await probeBwrapAndNsenter(bwrap, nsenter);
    if (!probe.ok) reason = `bwrap/nsenter cannot create or join sandbox namespaces here: ${probe.reason}`;
  }
  if (reason === undefined) return { mode: "bwrap", bwrap: bwrap!, nsenter: nsenter! };
  if (requested === "bwrap") {
    throw new RuntimeError(
      "UNSUPPORTED",
      `isolation "bwrap" is not available: ${reason}. Install bubblewrap and run as root (network namespaces), or start the emulator with isolation: "none".`,
    );
  }
  return { mode: "none", reason };
}

async function probeBwrapAndNsenter(
  bwrap: string,
  nsenter: string,
): Promise<{ ok: boolean; reason: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      bwrap,
      [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-net",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--info-fd",
        "3",
        "--",
        "sleep",
        "10",
      ],
      { stdio: ["ignore", "ignore", "pipe", "pipe"] },
    );
    let info = "";
    let stderr = "";
    let settled = false;
    const finish = (ok: boolean, reason: string): void => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      resolve({ ok, reason });
    };
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", (err) => finish(false, err.message));
    child.on("exit", () => finish(false, stderr.trim() || "bwrap exited early"));
    const infoStream = child.stdio[3] as NodeJS.ReadableStream | null;
    infoStream?.on("data", (d: Buffer) => {
      info += d.toString();
      const pid = parseChildPid(info);
      if (pid === undefined || settled) return;
      void waitForNamespaceSetup(pid).then(() =>
        run(nsenter, ["-t", String(pid), "-m", "-n", "-p", "-r", "--", "true"]).then((r) =>
          finish(r.code === 0, r.output.trim() || `exit ${r.code}`),
        ),
      );
    });
    setTimeout(() => finish(false, "timed out"), 5000).unref();
  });
}

/**
 * bwrap reports the namespace's pid 1 (`--info-fd`) before it has built the mount namespace; it forks the
 * command only once the root is in place. An exec that joins earlier would see a half-built filesystem, so
 * wait until pid 1 has a child.
 */
export async function waitForNamespaceSetup(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim() !== "") return;
    } catch {
      // No CONFIG_PROC_CHILDREN (or pid gone): give bwrap a moment instead.
      await new Promise((r) => setTimeout(r, 100));
      return;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Extracts `child-pid` from bwrap's `--info-fd` JSON once it is complete. */
export function parseChildPid(info: string): number | undefined {
  const match = /"child-pid"\s*:\s*(\d+)/.exec(info);
  return match ? Number(match[1]) : undefined;
}
