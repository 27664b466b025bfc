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

/** Where random picks are drawn from: below the kernel's ephemeral range (read once). */
let pickRange: [number, number] | undefined;

/**
 * Below the range of ports the kernel gives to `listen(0)` and outgoing connections (Linux's
 * ip_local_port_range; the IANA range where it cannot be read): at most 16,000 ports, from 10,000 up.
 */
function belowEphemeral(): [number, number] {
  if (pickRange) return pickRange;
  let low = 49152;
  try {
    const first = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
    );
    if (first > 0) low = first;
  } catch {
    // Not Linux: assume the IANA range.
  }
  const top = Math.max(low, 12_000);
  pickRange = [Math.max(10_000, top - 16_000), top];
  return pickRange;
}

/** Listens on `port` (0: the kernel's pick) and closes at once: the port it got, or undefined if it was taken. */
function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(undefined));
    server.listen(port, () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(bound > 0 ? bound : undefined));
    });
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
  const [bottom, top] = belowEphemeral();
  let port: number | undefined;
  for (let attempt = 0; attempt < 64 && port === undefined; attempt++) {
    const candidate = bottom + Math.floor(Math.random() * (top - bottom));
    if (!recent.includes(candidate)) port = await tryListen(candidate);
  }
  port ??= await tryListen(0);
  if (port === undefined) throw new Error("no free port");
  recent.push(port);
  if (recent.length > RECENT_KEEP) recent.shift();
  return port;
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
