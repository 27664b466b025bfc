import { readFileSync, statfsSync } from "node:fs";
import { totalmem } from "node:os";

/** The body of `GET /server_info` (OpenHands' shape). */
export interface ServerInfo {
  /** Seconds since the server started. */
  uptime: number;
  /** Seconds since the last `/execute_action`. */
  idle_time: number;
  resources: {
    /** CPU used by the server process (its children excluded) since the previous call, in percent of one core. */
    cpu_percent: number;
    memory: { rss: number; vms: number; percent: number };
    /** Usage of the filesystem holding the working directory. */
    disk: { total: number; used: number; free: number; percent: number };
    io: { read_bytes: number; write_bytes: number };
  };
  /**
   * Not in OpenHands' shape: how shells are attached, `pty` (a pseudo-terminal through util-linux `script`,
   * output rendered as a screen) or `pipe` (no pty could be opened: no `script` or no /dev/pts).
   */
  terminal?: "pty" | "pipe";
}

/** Measures CPU use between calls (like psutil's `cpu_percent()` without an interval). */
export class ServerInfoProbe {
  #lastCpu = process.cpuUsage();
  #lastAt = performance.now();

  constructor(
    private readonly startedAt: number,
    private readonly workingDir: string,
    private readonly terminal?: () => "pty" | "pipe",
  ) {}

  read(lastActionAt: number): ServerInfo {
    const now = Date.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const at = performance.now();
    const elapsedUs = Math.max(1, (at - this.#lastAt) * 1000);
    this.#lastCpu = process.cpuUsage();
    this.#lastAt = at;
    const rss = process.memoryUsage.rss();
    return {
      uptime: (now - this.startedAt) / 1000,
      idle_time: (now - lastActionAt) / 1000,
      resources: {
        cpu_percent: round(((cpu.user + cpu.system) / elapsedUs) * 100),
        memory: { rss, vms: procStatusKiB("VmSize") * 1024, percent: round((rss / totalmem()) * 100) },
        disk: diskUsage(this.workingDir),
        io: procIo(),
      },
      ...(this.terminal ? { terminal: this.terminal() } : {}),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function procStatusKiB(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function procIo(): { read_bytes: number; write_bytes: number } {
  try {
    const text = readFileSync("/proc/self/io", "utf8");
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
    return { read_bytes: get("read_bytes"), write_bytes: get("write_bytes") };
  } catch {
    return { read_bytes: 0, write_bytes: 0 };
  }
}

function diskUsage(path: string): { total: number; used: number; free: number; percent: number } {
  try {
    const s = statfsSync(path);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    const used = (s.blocks - s.bfree) * s.bsize;
    return { total, used, free, percent: total > 0 ? round((used / (used + free)) * 100) : 0 };
  } catch {
    return { total: 0, used: 0, free: 0, percent: 0 };
  }
}
