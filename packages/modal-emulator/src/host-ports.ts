import { createServer } from "node:net";

/** A sandbox command with the ports it names moved to free host ports (isolation "none"). */
export interface MovedPorts {
  argv: string[];
  /** Environment variables whose values were rewritten (only those). */
  env: Record<string, string>;
  /** Container port -> host port, for the ports that were moved. */
  hostPorts: Map<number, number>;
}

/** A port nobody listens on right now (the kernel's pick). */
export function freeHostPort(): Promise<number> {
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
