import { z } from "zod";
import { ALLOW_ENTRY } from "./egress-allow.js";

/** Resource limits applied to the sandbox's processes (best effort, via rlimits). */
export const LocalLimitsSchema = z
  .object({
    /**
     * Memory in MiB. Where a memory cgroup is writable (root hosts) it bounds the whole sandbox, the server's
     * own ~60 MB included, and a command over it is killed by the kernel (the server lives on). Elsewhere it
     * is RLIMIT_DATA on each command the shell runs (never on the server, which a data limit would kill at
     * start on Node 24).
     * @default unlimited
     */
    memoryMiB: z.number().int().min(64).optional(),
    /** CPU time per command process in seconds (RLIMIT_CPU on the shell and what it runs, not the server). @default unlimited */
    cpuSeconds: z.number().int().min(1).optional(),
    /**
     * Maximum processes (and threads) of the sandbox at once. Enforced by a `pids` cgroup per sandbox where the
     * cgroup filesystem is writable (root hosts), else by RLIMIT_NPROC of the (non-root) user. A root host
     * without a writable `pids` cgroup refuses the option (UNSUPPORTED) rather than ignore it.
     * @default unlimited
     */
    maxProcesses: z.number().int().min(8).optional(),
    /** Largest file a process may write, in MiB (RLIMIT_FSIZE). @default unlimited */
    maxFileMiB: z.number().int().min(1).optional(),
  })
  .strict();

/** Options of {@link localRuntime}: what users write (`LocalRuntimeOptions`) and the parsed form. */
export const LocalRuntimeOptionsSchema = z
  .object({
    /**
     * `bubblewrap`: no capabilities, a seccomp filter, a minimal read-only view of the system directories, a
     * writable workspace at /workspace, private /tmp and HOME, own PID/IPC/UTS/network namespaces.
     * `none`: a plain child process. `auto`: bubblewrap when `bwrap` works here, else none (with one warning).
     * @default "auto"
     */
    isolation: z.enum(["auto", "none", "bubblewrap"]).default("auto"),
    /**
     * The sandbox's network (bubblewrap only; with `isolation: "none"` the sandbox shares the host's network).
     * - `"egress"`: its own network namespace with outbound access through user-mode NAT (`slirp4netns`,
     *   started with `--disable-host-loopback`): the internet is reachable, the host's loopback services and
     *   other sandboxes are not. Needs `slirp4netns` (apt-get install slirp4netns).
     * - `{ allow: [...] }`: egress limited to these addresses, CIDRs or host names (resolved once when the
     *   sandbox starts), plus DNS through the NAT's resolver; everything else is refused. Needs a root host
     *   with `nft` (apt-get install nftables).
     * - `"none"`: its own empty network namespace: only its own loopback.
     * `true` and `false` are accepted as `"egress"` and `"none"`.
     * @default "egress"
     */
    network: z
      .union(
        [
          z.enum(["egress", "none"]),
          z.boolean(),
          z
            .object({
              allow: z
                .array(z.string().regex(ALLOW_ENTRY, "not an IP address, CIDR or host name"))
                .min(1, 'list at least one address, CIDR or host name (or use network: "none")'),
            })
            .strict(),
        ],
        { error: 'expected "egress", "none", true, false or { allow: [addresses, CIDRs or host names] }' },
      )
      .default("egress")
      .transform((v): "egress" | "none" | { allow: string[] } =>
        v === true ? "egress" : v === false ? "none" : v,
      ),
    /**
     * Extra host paths bound read-only into a bubblewrap sandbox, each at the same path or at `target`.
     * Nothing of the host beyond the system directories is visible unless listed here.
     * @default []
     */
    extraBinds: z
      .array(
        z.union([
          z.string().startsWith("/", "must be an absolute path"),
          z
            .object({
              source: z.string().startsWith("/", "must be an absolute path"),
              target: z.string().startsWith("/", "must be an absolute path").optional(),
            })
            .strict(),
        ]),
      )
      .default([])
      .transform((binds) =>
        binds.map((b) =>
          typeof b === "string"
            ? { source: b, target: b }
            : { source: b.source, target: b.target ?? b.source },
        ),
      ),
    /**
     * Host directory used as the workspace. When absent, a fresh temporary directory is created and removed
     * on close (unless `keepWorkspace`). A given directory is never removed.
     */
    workspaceDir: z.string().min(1).optional(),
    /** Keep the temporary workspace after close. @default false */
    keepWorkspace: z.boolean().default(false),
    /** Environment variables for the sandbox (added to a minimal PATH/LANG/HOME environment). @default {} */
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid variable name"), z.string())
      .default({}),
    /** Deadline for the server to become ready, in ms. @default 15000 */
    startupTimeoutMs: z.number().int().positive().default(15_000),
    /** Hard timeout for actions without one, in ms. @default 120000 */
    defaultActionTimeoutMs: z.number().int().positive().default(120_000),
    /** The server's no-change timeout (`NO_CHANGE_TIMEOUT_SECONDS`). @default 10 */
    noChangeTimeoutSeconds: z.number().positive().default(10),
    /** Best-effort resource limits. @default {} */
    limits: LocalLimitsSchema.default({}),
    /** Warm pool: `size` sandboxes kept ready; `create()` hands one out at once. @default { size: 0 } */
    pool: z
      .object({ size: z.number().int().min(0).max(64).default(0) })
      .strict()
      .default({ size: 0 }),
    /** Keep the sandbox running after `close()` (re-attach with its handle). @default false */
    keepAlive: z.boolean().default(false),
    /** Node.js binary that runs the action server. @default process.execPath */
    nodePath: z.string().min(1).optional(),
    /** Directory for per-sandbox state (server log, HOME, socket). @default `<os tmpdir>/agent-runtime-local` */
    stateDir: z.string().min(1).optional(),
  })
  .strict();

/** What users write. */
export type LocalRuntimeOptions = z.input<typeof LocalRuntimeOptionsSchema>;
/** Options after parsing, defaults filled. */
export type ResolvedLocalRuntimeOptions = z.output<typeof LocalRuntimeOptionsSchema>;
