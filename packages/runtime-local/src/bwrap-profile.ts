import { lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";

/** Where the sandbox sees its writable workspace. */
export const SANDBOX_WORKSPACE = "/workspace";
/** The sandbox's HOME (a private per-sandbox directory on the host). */
export const SANDBOX_HOME = "/root";
/** Directory inside the sandbox where the server puts its unix socket (a per-sandbox host directory). */
export const SANDBOX_RUN_DIR = "/run/agent-runtime";

/** Where the sandbox sees the shell wrapper that applies per-command limits (read-only). */
export const SANDBOX_SHELL_WRAPPER = "/run/agent-runtime-shell";

/** System directories shown read-only (or recreated as the symlinks they are, such as /lib -> usr/lib). */
const SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"] as const;

/** Files under /etc hidden even when the host made them world-readable by mistake. */
const ALWAYS_HIDDEN_ETC = ["/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"] as const;

/** Everything the bubblewrap command line depends on. */
export interface BubblewrapProfile {
  /** Node binary and server bundle: bound back read-only when they live outside the system directories. */
  node: string;
  serverBin: string;
  /** Host directories of this sandbox. */
  hostWorkspace: string;
  homeDir: string;
  runDir: string;
  /** Host paths of an empty file and an empty directory used to mask private files. */
  emptyFile: string;
  emptyDir: string;
  /** A resolv.conf for the NAT network (bound over /etc/resolv.conf), when the sandbox has egress. */
  resolvConf?: string;
  extraBinds: readonly { source: string; target: string }[];
  /** Host path of the shell wrapper (per-command limits), bound read-only at {@link SANDBOX_SHELL_WRAPPER}. */
  shellWrapper?: string;
  /** File descriptors (in bwrap's stdio) of the compiled seccomp program and of the info pipe. */
  seccompFd?: number;
  infoFd: number;
  /** Drop every capability (when bwrap runs as root; unprivileged bwrap has none to drop). */
  dropCapabilities: boolean;
}

/**
 * The bubblewrap arguments of one sandbox: no capabilities, a seccomp filter, new PID/IPC/UTS/network/cgroup
 * namespaces and a new session, and a minimal filesystem: the system directories read-only with private
 * files of /etc masked, a private /tmp, /var/tmp, HOME and /run, the workspace, and nothing else of the host
 * (its home directories, state, data, checkout and configuration) unless listed in `extraBinds`.
 */
export function bubblewrapArgs(p: BubblewrapProfile): string[] {
  const args: string[] = ["--tmpfs", "/"];
  for (const path of SYSTEM_PATHS) {
    const st = lstatOrUndefined(path);
    if (!st) continue;
    if (st.isSymbolicLink()) args.push("--symlink", readlinkSync(path), path);
    else if (st.isDirectory()) args.push("--ro-bind", path, path);
  }
  for (const { path, dir } of privateEtcEntries())
    args.push("--ro-bind", dir ? p.emptyDir : p.emptyFile, path);
  if (p.resolvConf && lstatOrUndefined("/etc/resolv.conf")?.isFile()) {
    args.push("--ro-bind", p.resolvConf, "/etc/resolv.conf");
  }
  args.push(
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    // uid 0 without capabilities is still root to the kernel's uid checks: /proc/sys (sysctls such as
    // core_pattern) and /proc/sysrq-trigger would be writable. The whole procfs is read-only, and what
    // Docker masks too is hidden (/proc/keys lists root's keys, the rest leaks kernel state).
    "--remount-ro",
    "/proc",
    ...maskedProcArgs(p.emptyFile, p.emptyDir),
    "--tmpfs",
    "/tmp",
    "--tmpfs",
    "/var/tmp",
    "--dir",
    "/home",
    "--bind",
    p.homeDir,
    SANDBOX_HOME,
    "--bind",
    p.runDir,
    SANDBOX_RUN_DIR,
    "--bind",
    p.hostWorkspace,
    SANDBOX_WORKSPACE,
  );
  for (const dir of hostFilesToBindBack([p.node, p.serverBin])) args.push("--ro-bind", dir, dir);
  if (p.shellWrapper) args.push("--ro-bind", p.shellWrapper, SANDBOX_SHELL_WRAPPER);
  for (const bind of p.extraBinds) args.push("--ro-bind", bind.source, bind.target);
  args.push(
    "--remount-ro",
    "/",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--hostname",
    "sandbox",
    "--unshare-net",
    "--unshare-cgroup-try",
    "--new-session",
    "--info-fd",
    String(p.infoFd),
  );
  if (p.dropCapabilities) args.push("--cap-drop", "ALL");
  if (p.seccompFd !== undefined) args.push("--seccomp", String(p.seccompFd));
  args.push("--chdir", SANDBOX_WORKSPACE);
  return args;
}

/** Entries of /proc hidden from the sandbox (as Docker's default profile does). */
const MASKED_PROC = [
  "/proc/keys",
  "/proc/key-users",
  "/proc/timer_list",
  "/proc/sched_debug",
  "/proc/latency_stats",
  "/proc/kcore",
  "/proc/kallsyms",
  "/proc/acpi",
  "/proc/scsi",
  "/proc/asound",
  "/proc/firmware",
] as const;

function maskedProcArgs(emptyFile: string, emptyDir: string): string[] {
  const args: string[] = [];
  for (const path of MASKED_PROC) {
    const st = lstatOrUndefined(path);
    if (st) args.push("--ro-bind", st.isDirectory() ? emptyDir : emptyFile, path);
  }
  return args;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

let etcCache: { path: string; dir: boolean }[] | undefined;
/**
 * Entries of /etc that are not world-readable (shadow files, private keys, database and service
 * configuration): the sandbox runs as uid 0 without capabilities, so the owner's read bit would still let
 * it read root-owned files. Each is masked with an empty file or directory. Computed once per process.
 */
export function privateEtcEntries(): readonly { path: string; dir: boolean }[] {
  if (etcCache) return etcCache;
  const found = new Map<string, boolean>();
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      const st = lstatOrUndefined(path);
      if (!st || st.isSymbolicLink()) continue;
      const worldReadable = (st.mode & 0o004) !== 0;
      if (st.isDirectory()) {
        const worldSearchable = (st.mode & 0o001) !== 0;
        if (!worldReadable || !worldSearchable) found.set(path, true);
        else if (depth < 8) walk(path, depth + 1);
      } else if (!worldReadable) {
        found.set(path, false);
      }
    }
  };
  walk("/etc", 0);
  for (const path of ALWAYS_HIDDEN_ETC) {
    const st = lstatOrUndefined(path);
    if (st && !st.isSymbolicLink()) found.set(path, st.isDirectory());
  }
  etcCache = [...found].map(([path, dir]) => ({ path, dir }));
  return etcCache;
}

/** Directories (or files) of the node binary and server bundle that the system binds do not show. */
export function hostFilesToBindBack(files: readonly string[]): string[] {
  const shown = SYSTEM_PATHS.map((dir) => `${dir}/`);
  const out = new Set<string>();
  for (const file of files) {
    if (shown.some((prefix) => file.startsWith(prefix))) continue;
    // The node binary alone (not its whole directory, which may be a user's bin); the bundle's dist folder.
    out.add(file.endsWith(".cjs") || file.endsWith(".js") ? dirname(file) : file);
  }
  return [...out];
}
