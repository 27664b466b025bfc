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

/** A cgroup controller runtime-local uses: `pids` (process count) or `memory` (a sandbox's memory). */
export type Controller = "pids" | "memory";

interface ControllerBase {
  dir: string;
  v2: boolean;
}

const bases = new Map<Controller, ControllerBase | null>();

/**
 * Where per-sandbox cgroups of `controller` are made, or undefined when no cgroup filesystem with that
 * controller is writable here (typical for non-root users). cgroup v1 (`/sys/fs/cgroup/<controller>`) and v2
 * (`/sys/fs/cgroup` with the controller delegated) are both supported. Checked once per process.
 */
export function cgroupBase(controller: Controller): ControllerBase | undefined {
  const known = bases.get(controller);
  if (known !== undefined) return known ?? undefined;
  let found: ControllerBase | null = null;
  const candidates: ControllerBase[] = [
    { dir: join(CGROUP_FS, controller), v2: false },
    { dir: CGROUP_FS, v2: true },
  ];
  for (const { dir, v2 } of candidates) {
    try {
      if (v2) {
        const controllers = readFileSync(join(dir, "cgroup.controllers"), "utf8");
        if (!controllers.split(/\s+/).includes(controller)) continue;
      } else if (!existsSync(join(dir, "tasks"))) {
        continue;
      }
      accessSync(dir, constants.W_OK);
      const ours = join(dir, GROUP_NAME);
      mkdirSync(ours, { recursive: true });
      if (v2) {
        // Delegate the controller down to our group's children.
        delegate(join(dir, "cgroup.subtree_control"), controller);
        delegate(join(ours, "cgroup.subtree_control"), controller);
      }
      found = { dir: ours, v2 };
      break;
    } catch {
      // not writable or not there: try the next one
    }
  }
  bases.set(controller, found);
  return found ?? undefined;
}

/** The directory under which per-sandbox `pids` cgroups are made, or undefined. */
export function pidsCgroupBase(): string | undefined {
  return cgroupBase("pids")?.dir;
}

function delegate(file: string, controller: Controller): void {
  const current = readFileSync(file, "utf8");
  if (!current.split(/\s+/).includes(controller)) writeFileSync(file, `+${controller}`);
}

/** Limits of one sandbox's cgroups; `undefined` leaves a controller out. */
export interface SandboxCgroupLimits {
  /** `max`: counted (so every process can be found and killed) but not capped. */
  maxProcesses?: number | "max";
  memoryMiB?: number;
}

/**
 * Creates the cgroups of one sandbox (one per controller with a limit, where writable) and returns their
 * directories; the sandbox's first process joins each before anything else runs.
 */
export function createSandboxCgroups(sandboxId: string, limits: SandboxCgroupLimits): string[] {
  const dirs: string[] = [];
  try {
    const pids = limits.maxProcesses !== undefined ? cgroupBase("pids") : undefined;
    if (pids) {
      const dir = join(pids.dir, sandboxId);
      mkdirSync(dir);
      dirs.push(dir);
      writeFileSync(join(dir, "pids.max"), String(limits.maxProcesses));
    }
    const memory = limits.memoryMiB !== undefined ? cgroupBase("memory") : undefined;
    if (memory && limits.memoryMiB !== undefined) {
      const dir = join(memory.dir, sandboxId);
      mkdirSync(dir);
      dirs.push(dir);
      const bytes = String(limits.memoryMiB * 1024 * 1024);
      if (memory.v2) {
        writeFileSync(join(dir, "memory.max"), bytes);
        // No swap beyond the limit, where swap accounting exists.
        if (existsSync(join(dir, "memory.swap.max"))) writeFileSync(join(dir, "memory.swap.max"), "0");
      } else {
        writeFileSync(join(dir, "memory.limit_in_bytes"), bytes);
        const memsw = join(dir, "memory.memsw.limit_in_bytes");
        if (existsSync(memsw)) writeFileSync(memsw, bytes);
      }
    }
    return dirs;
  } catch (err) {
    for (const dir of dirs) rmdirQuiet(dir);
    throw err;
  }
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // busy or gone
  }
}

/** The process ids in a cgroup (empty when it is gone). */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** True when `dir` is a sandbox cgroup directly under one of our groups (paths from handles are input). */
function isOurs(dir: string): boolean {
  for (const controller of ["pids", "memory"] as const) {
    const base = cgroupBase(controller)?.dir;
    if (base && dir.startsWith(`${base}/`) && !dir.slice(base.length + 1).includes("/")) return true;
  }
  return false;
}

/** Kills every process in the cgroup and removes it. Only directories directly under our groups are touched. */
export async function removeCgroup(dir: string): Promise<void> {
  if (!isOurs(dir)) return;
  const deadline = Date.now() + 3000;
  for (;;) {
    for (const pid of cgroupPids(dir)) {
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
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || Date.now() > deadline) return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
