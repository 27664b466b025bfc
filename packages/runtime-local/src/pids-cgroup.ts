import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

const CGROUP_FS = "/sys/fs/cgroup";
const GROUP_NAME = "agent-runtime";

let base: string | null | undefined;
/**
 * The directory under which per-sandbox `pids` cgroups are made, or undefined when no cgroup filesystem with
 * the pids controller is writable here (typical for non-root users). cgroup v1 (`/sys/fs/cgroup/pids`) and
 * v2 (`/sys/fs/cgroup` with `pids` delegated) are both supported. Checked once per process.
 */
export function pidsCgroupBase(): string | undefined {
  if (base !== undefined) return base ?? undefined;
  base = null;
  const candidates: { dir: string; v2: boolean }[] = [
    { dir: join(CGROUP_FS, "pids"), v2: false },
    { dir: CGROUP_FS, v2: true },
  ];
  for (const { dir, v2 } of candidates) {
    try {
      if (v2) {
        const controllers = readFileSync(join(dir, "cgroup.controllers"), "utf8");
        if (!controllers.split(/\s+/).includes("pids")) continue;
      } else if (!existsSync(join(dir, "tasks"))) {
        continue;
      }
      accessSync(dir, constants.W_OK);
      const ours = join(dir, GROUP_NAME);
      mkdirSync(ours, { recursive: true });
      if (v2) {
        // Delegate the pids controller down to our group's children.
        writeSubtree(join(dir, "cgroup.subtree_control"));
        writeSubtree(join(ours, "cgroup.subtree_control"));
      }
      base = ours;
      break;
    } catch {
      // not writable or not there: try the next one
    }
  }
  return base ?? undefined;
}

function writeSubtree(file: string): void {
  const current = readFileSync(file, "utf8");
  if (!current.split(/\s+/).includes("pids")) writeFileSync(file, "+pids");
}

/** Creates the cgroup of one sandbox with `pids.max` set (`max`: no limit); returns its directory. */
export function createPidsCgroup(sandboxId: string, maxProcesses: number | "max"): string {
  const root = pidsCgroupBase();
  if (!root) throw new Error("no writable pids cgroup");
  const dir = join(root, sandboxId);
  mkdirSync(dir);
  writeFileSync(join(dir, "pids.max"), String(maxProcesses));
  return dir;
}

/** The process ids in a cgroup (empty when it is gone). */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Kills every process in the cgroup and removes it. Only directories directly under our group are touched
 * (the path comes from a handle, which is input).
 */
export async function removePidsCgroup(dir: string): Promise<void> {
  const root = pidsCgroupBase();
  if (!root || !dir.startsWith(`${root}/`) || dir.slice(root.length + 1).includes("/")) return;
  const deadline = Date.now() + 3000;
  for (;;) {
    const pids = cgroupPids(dir);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (Date.now() > deadline) return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
