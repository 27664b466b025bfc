/**
 * A seccomp filter for bubblewrap's `--seccomp FD`: a classic BPF program (an array of
 * `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`) compiled here, without libseccomp.
 *
 * Policy, in order:
 * 1. `seccomp_data.arch` must be the native ABI; any other (i386, x32, arm32 compat) kills the process,
 *    because syscall numbers differ per ABI and a deny list for one ABI is an allow list for another.
 * 2. Each name in {@link DENIED_SYSCALLS} fails with EPERM.
 * 3. A few calls are denied only for some arguments: `socket(AF_PACKET, ...)`, `ioctl(fd, TIOCSTI|TIOCLINUX)`
 *    and `clone` with namespace flags (EPERM); `clone3` fails with ENOSYS so libc falls back to `clone`,
 *    whose flags a filter can read (`clone3` passes them in memory, out of the filter's reach).
 * 4. Everything else is allowed.
 *
 * Syscall numbers are hardcoded (from `asm/unistd_64.h` for x86_64 and `asm-generic/unistd.h` for aarch64);
 * the tests compare them with the headers when those are installed.
 */
import { RuntimeError } from "@agent-runtime/runtime-core";

/** A CPU architecture (kernel ABI) the filter can be built for. */
export type SeccompArch = "x86_64" | "aarch64";

/** The seccomp architecture of this Node process, or `undefined` where we have no syscall table. */
export function seccompArch(): SeccompArch | undefined {
  if (process.arch === "x64") return "x86_64";
  if (process.arch === "arm64") return "aarch64";
  return undefined;
}

/**
 * Syscall numbers: `[name, x86_64, aarch64]`; `null` where the call does not exist on that architecture.
 * Holds every denied or argument-checked call, plus a few more that callers may add with `extraDenied`.
 */
const SYSCALL_TABLE: ReadonlyArray<readonly [string, number | null, number | null]> = [
  ["ioctl", 16, 29],
  ["socket", 41, 198],
  ["clone", 56, 220],
  ["ptrace", 101, 117],
  ["syslog", 103, 116],
  ["personality", 135, 92],
  ["vhangup", 153, 58],
  ["modify_ldt", 154, null],
  ["pivot_root", 155, 41],
  ["adjtimex", 159, 171],
  ["chroot", 161, 51],
  ["acct", 163, 89],
  ["settimeofday", 164, 170],
  ["mount", 165, 40],
  ["umount2", 166, 39],
  ["swapon", 167, 224],
  ["swapoff", 168, 225],
  ["reboot", 169, 142],
  ["sethostname", 170, 161],
  ["setdomainname", 171, 162],
  ["iopl", 172, null],
  ["ioperm", 173, null],
  ["init_module", 175, 105],
  ["delete_module", 176, 106],
  ["quotactl", 179, 60],
  ["nfsservctl", 180, 42],
  ["lookup_dcookie", 212, 18],
  ["clock_settime", 227, 112],
  ["kexec_load", 246, 104],
  ["add_key", 248, 217],
  ["request_key", 249, 218],
  ["keyctl", 250, 219],
  ["unshare", 272, 97],
  ["perf_event_open", 298, 241],
  ["name_to_handle_at", 303, 264],
  ["open_by_handle_at", 304, 265],
  ["clock_adjtime", 305, 266],
  ["setns", 308, 268],
  ["process_vm_readv", 310, 270],
  ["process_vm_writev", 311, 271],
  ["kcmp", 312, 272],
  ["finit_module", 313, 273],
  ["kexec_file_load", 320, 294],
  ["bpf", 321, 280],
  ["userfaultfd", 323, 282],
  ["io_uring_setup", 425, 425],
  ["io_uring_enter", 426, 426],
  ["io_uring_register", 427, 427],
  ["open_tree", 428, 428],
  ["move_mount", 429, 429],
  ["fsopen", 430, 430],
  ["fsconfig", 431, 431],
  ["fsmount", 432, 432],
  ["fspick", 433, 433],
  ["clone3", 435, 435],
  ["pidfd_getfd", 438, 438],
  ["process_madvise", 440, 440],
  ["mount_setattr", 442, 442],
];

/** Syscall numbers per architecture for every call this module knows (a call missing on an arch is absent). */
export const SYSCALL_NUMBERS: Readonly<Record<SeccompArch, Readonly<Record<string, number>>>> = {
  x86_64: Object.fromEntries(SYSCALL_TABLE.flatMap(([name, nr]) => (nr === null ? [] : [[name, nr]]))),
  aarch64: Object.fromEntries(SYSCALL_TABLE.flatMap(([name, , nr]) => (nr === null ? [] : [[name, nr]]))),
};

/**
 * Syscalls that always fail with EPERM inside the sandbox. None is needed to build or run software; each
 * either changes state outside the sandbox or is a well-known route out of it. Names that do not exist on
 * an architecture (`iopl`, `ioperm` on aarch64) are skipped there. `umount` (without the 2) exists only on
 * 32-bit ABIs, which the architecture check already kills.
 */
export const DENIED_SYSCALLS: readonly string[] = [
  // Mounts and root changes: rearranging the filesystem view could uncover what bwrap hid or made read-only.
  "mount",
  "umount2",
  "pivot_root",
  "chroot",
  // The new mount API (5.2+): the same powers as mount(2) through different entry points.
  "move_mount",
  "open_tree",
  "fsopen",
  "fsconfig",
  "fsmount",
  "fspick",
  "mount_setattr",
  // Kernel keyrings are not namespaced: keys of other users and containers could be read or planted.
  "keyctl",
  "add_key",
  "request_key",
  // Reading or writing another process's memory (a sibling agent process, or bwrap's pid 1).
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  // Loading kernel code or replacing the kernel.
  "init_module",
  "finit_module",
  "delete_module",
  "kexec_load",
  "kexec_file_load",
  // Host-wide state: power, swap, process accounting, the clock, host and domain names.
  "reboot",
  "swapon",
  "swapoff",
  "acct",
  "settimeofday",
  "clock_settime",
  "clock_adjtime",
  "adjtimex",
  "sethostname",
  "setdomainname",
  // x86 I/O port access (direct hardware access).
  "iopl",
  "ioperm",
  // Large kernel attack surface (eBPF verifier, perf events) and the page-fault stalling trick that turns
  // many kernel races into reliable exploits.
  "bpf",
  "perf_event_open",
  "userfaultfd",
  // Disk quotas of host filesystems; obsolete calls with a history of bugs.
  "quotactl",
  "lookup_dcookie",
  "nfsservctl",
  // New namespaces: a user namespace grants capabilities again and exposes code rarely reached otherwise.
  "unshare",
  "setns",
  // Opening files by handle bypasses the mount view entirely (the "shocker" container escape).
  "name_to_handle_at",
  "open_by_handle_at",
  // The kernel log can leak kernel addresses and host activity; vhangup disturbs the controlling terminal.
  "syslog",
  "vhangup",
  // io_uring runs syscalls (socket, openat...) from kernel workers that this filter never sees.
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
];

/** Options of {@link buildSeccompFilter}. */
export interface SeccompFilterOptions {
  /**
   * Architecture to build for (the filter kills every other ABI).
   * @default seccompArch() — the architecture of this Node process
   */
  arch?: SeccompArch;
  /**
   * More syscall names to deny with EPERM, in addition to {@link DENIED_SYSCALLS}. Each must be a key of
   * {@link SYSCALL_NUMBERS} for some architecture; names absent on `arch` are skipped.
   * @default []
   */
  extraDenied?: readonly string[];
}

// Constants from linux/filter.h, linux/seccomp.h, linux/audit.h and asm-generic/errno-base.h.
const BPF_LD_W_ABS = 0x00 | 0x00 | 0x20;
const BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00;
const BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00;
const BPF_JMP_JSET_K = 0x05 | 0x40 | 0x00;
const BPF_RET_K = 0x06 | 0x00;
const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;
const AUDIT_ARCH: Record<SeccompArch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };
const X32_SYSCALL_BIT = 0x40000000;
/** Offsets in `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`; args read as low 32 bits (LE). */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARG0_LO = 16;
const OFFSET_ARG1_LO = 24;
const AF_PACKET = 17;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
const CLONE_NAMESPACE_FLAGS =
  0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const load = (offset: number): Insn => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: offset });
const ret = (action: number): Insn => ({ code: BPF_RET_K, jt: 0, jf: 0, k: action });
const jump = (code: number, k: number, jt: number, jf: number): Insn => ({ code, jt, jf, k });

/**
 * Compiles the sandbox's seccomp filter: bytes to write to the fd given to `bwrap --seccomp FD`.
 *
 * @example
 * ```ts
 * const filter = buildSeccompFilter(); // for this machine's architecture
 * const child = spawn("bwrap", ["--seccomp", "3", ...args], { stdio: ["ignore", "pipe", "pipe", "pipe"] });
 * (child.stdio[3] as Writable).end(filter);
 * ```
 */
export function buildSeccompFilter(options: SeccompFilterOptions = {}): Buffer {
  const arch = options.arch ?? seccompArch();
  if (arch === undefined) {
    throw new RuntimeError(
      "UNSUPPORTED",
      `No seccomp syscall table for process.arch "${process.arch}" (only x64 and arm64); run bubblewrap without --seccomp here.`,
    );
  }
  const numbers = SYSCALL_NUMBERS[arch];
  const unknown = (options.extraDenied ?? []).filter(
    (name) => SYSCALL_NUMBERS.x86_64[name] === undefined && SYSCALL_NUMBERS.aarch64[name] === undefined,
  );
  if (unknown.length > 0) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `extraDenied: unknown syscall name(s) ${unknown.join(", ")}; known names: ${Object.keys(SYSCALL_NUMBERS.x86_64).join(", ")}.`,
    );
  }
  const nr = (name: string): number => {
    const value = numbers[name];
    if (value === undefined) throw new RuntimeError("INTERNAL", `no ${arch} number for syscall ${name}`);
    return value;
  };

  const denied = new Set<number>();
  for (const name of [...DENIED_SYSCALLS, ...(options.extraDenied ?? [])]) {
    const value = numbers[name];
    if (value !== undefined) denied.add(value);
  }

  const prog: Insn[] = [
    load(OFFSET_ARCH),
    jump(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET_KILL_PROCESS),
    load(OFFSET_NR),
  ];
  if (arch === "x86_64") {
    // x32 calls arrive with AUDIT_ARCH_X86_64 and nr | 0x40000000. nr -1 (0xffffffff) is what a tracer sets
    // to skip a call; it is no syscall, so let it through to fail with ENOSYS as usual (as libseccomp does).
    prog.push(
      jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 2),
      jump(BPF_JMP_JEQ_K, 0xffffffff, 1, 0),
      ret(SECCOMP_RET_KILL_PROCESS),
    );
  }
  for (const value of denied) {
    prog.push(jump(BPF_JMP_JEQ_K, value, 0, 1), ret(SECCOMP_RET_ERRNO | EPERM));
  }
  // Argument checks: each block ends in a return, so the accumulator (overwritten by the argument load)
  // never reaches the next block. Only low 32 bits are compared: the kernel reads these as 32-bit ints, so
  // comparing all 64 bits could be bypassed by setting high bits (Flatpak's CVE-2019-10063 for TIOCSTI).
  prog.push(
    jump(BPF_JMP_JEQ_K, nr("socket"), 0, 4),
    load(OFFSET_ARG0_LO),
    jump(BPF_JMP_JEQ_K, AF_PACKET, 0, 1),
    ret(SECCOMP_RET_ERRNO | EPERM),
    ret(SECCOMP_RET_ALLOW),
  );
  prog.push(
    jump(BPF_JMP_JEQ_K, nr("ioctl"), 0, 5),
    load(OFFSET_ARG1_LO),
    jump(BPF_JMP_JEQ_K, TIOCSTI, 1, 0),
    jump(BPF_JMP_JEQ_K, TIOCLINUX, 0, 1),
    ret(SECCOMP_RET_ERRNO | EPERM),
    ret(SECCOMP_RET_ALLOW),
  );
  // clone's flags are arg 0 on both x86_64 and aarch64 (their other arguments differ in order).
  prog.push(
    jump(BPF_JMP_JEQ_K, nr("clone"), 0, 4),
    load(OFFSET_ARG0_LO),
    jump(BPF_JMP_JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1),
    ret(SECCOMP_RET_ERRNO | EPERM),
    ret(SECCOMP_RET_ALLOW),
  );
  prog.push(jump(BPF_JMP_JEQ_K, nr("clone3"), 0, 1), ret(SECCOMP_RET_ERRNO | ENOSYS));
  prog.push(ret(SECCOMP_RET_ALLOW));

  // sock_filter in native byte order; both supported architectures run Linux little-endian.
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(insn.jt, i * 8 + 2);
    out.writeUInt8(insn.jf, i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}
