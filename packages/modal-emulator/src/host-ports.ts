import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** A sandbox command with the ports it names moved to free host ports (isolation "none"). */
export interface MovedPorts {
  argv: string[];
  /** Environment variables whose values were rewritten (only those). */
  env: Record<string, string>;
  /** Container port -> host port, for the ports that were moved. */
  hostPorts: Map<number, number>;
}

/** Ports handed out by this process lately: not handed out again while they may still be starting. */
const recent: number[] = [];
const RECENT_KEEP = 2000;

/**
 * The range of ports the kernel gives to `listen(0)` and outgoing connections (Linux's ip_local_port_range), or
 * its usual default where it cannot be read.
 */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (low && high && low < high) return [low, high];
  } catch {
    // Not Linux: assume the IANA range.
  }
  return [49152, 65535];
}

function bindsNow(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

/**
 * A port nobody listens on right now, for a sandbox's server to bind a moment later. The kernel's own pick
 * (`listen(0)`) would come from the ephemeral range, which every other process's `listen(0)` and outgoing
 * connection draws from too: one of them could take it before the sandbox binds (seen as a sandbox whose server
 * exits at once on a busy machine). So the port is drawn at random from below that range, checked free, and not
 * handed out again by this process soon after; the kernel's pick is the fallback.
 */
export async function freeHostPort(): Promise<number> {
  const [low] = ephemeralRange();
  const top = Math.max(low, 12_000);
  const bottom = Math.max(10_000, top - 16_000);
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    if (recent.includes(port)) continue;
    if (await bindsNow(port)) return remember(port);
  }
  return remember(await kernelPort());
}

function remember(port: number): number {
  recent.push(port);
  if (recent.length > RECENT_KEEP) recent.shift();
  return port;
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/**
 * Without network namespaces every sandbox shares the host's ports, so two sandboxes that expose the same
 * container port would collide. A port the command names is moved to a free host port: an argv element that is
 * the number (`8000`) or ends in `=<number>` (`--port=8000`), and an environment variable whose name contains
 * `PORT` and whose value is the number. The tunnel then forwards to the host port. A port named nowhere (say,
 * inside a shell string) stays where it is.
 */
export async function moveNamedPorts(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  ports: readonly number[],
  pickPort: () => Promise<number> = freeHostPort,
): Promise<MovedPorts> {
  const named = (value: string, port: number): boolean =>
    value === String(port) || value.endsWith(`=${port}`);
  const hostPorts = new Map<number, number>();
  for (const port of ports) {
    const inArgv = argv.some((a) => named(a, port));
    const inEnv = Object.entries(env).some(([k, v]) => /port/i.test(k) && v === String(port));
    if (inArgv || inEnv) hostPorts.set(port, await pickPort());
  }
  if (hostPorts.size === 0) return { argv: [...argv], env: {}, hostPorts };
  const rewrite = (value: string): string => {
    for (const [port, hostPort] of hostPorts) {
      if (value === String(port)) return String(hostPort);
      if (value.endsWith(`=${port}`)) return `${value.slice(0, -String(port).length)}${hostPort}`;
    }
    return value;
  };
  const movedEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!/port/i.test(key)) continue;
    const next = rewrite(value);
    if (next !== value) movedEnv[key] = next;
  }
  return { argv: argv.map(rewrite), env: movedEnv, hostPorts };
}
