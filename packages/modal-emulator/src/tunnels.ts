import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";

/** Where a tunnel's traffic goes: a TCP port on the host, or a unix socket served by a relay in the sandbox. */
export type Upstream = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

/** One open port as the SDK sees it (`TunnelData`). */
export interface TunnelInfo {
  containerPort: number;
  host: string;
  port: number;
  unencryptedHost?: string;
  unencryptedPort?: number;
}

/** A port the sandbox asked to expose. */
export interface PortRequest {
  port: number;
  unencrypted: boolean;
}

/** Callbacks a tunnel set reports activity to (for the idle timeout). */
export interface TunnelActivity {
  opened(): void;
  closed(): void;
}

/**
 * The public side of one sandbox's ports: a TLS listener per port (certificate from the emulator's CA) and,
 * for unencrypted ports, a plain TCP listener too, each forwarding to the sandbox's port.
 */
export class TunnelSet {
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  #refuseUntil = 0;
  #closed = false;

  constructor(
    private readonly bindHost: string,
    private readonly tls: { certPem: string; keyPem: string },
    private readonly upstreamFor: (containerPort: number) => Promise<Upstream>,
    private readonly activity: TunnelActivity,
    /**
     * Strict mode: a connection that the sandbox gives up before sending a byte (its server does not listen
     * yet, or closed it at once) is reset (TCP RST, the client sees ECONNRESET), not closed. Modal hands out
     * tunnels before the sandbox's server listens (`SandboxCreateV2Response.tunnels` comes with the create
     * reply); GUESS: what its edge then answers is not documented, a reset is the harshest plausible answer.
     */
    private readonly resetRefused = false,
  ) {}

  /** Opens listeners for every requested port and returns what the SDK needs. */
  async open(ports: readonly PortRequest[]): Promise<TunnelInfo[]> {
    const out: TunnelInfo[] = [];
    for (const req of ports) {
      const tlsServer = createTlsServer({ cert: this.tls.certPem, key: this.tls.keyPem }, (socket) =>
        this.#forward(socket, req.port),
      );
      tlsServer.on("tlsClientError", () => {});
      const port = await this.#listen(tlsServer);
      const info: TunnelInfo = { containerPort: req.port, host: this.bindHost, port };
      if (req.unencrypted) {
        const tcpServer = createNetServer((socket) => this.#forward(socket, req.port));
        info.unencryptedHost = this.bindHost;
        info.unencryptedPort = await this.#listen(tcpServer);
      }
      out.push(info);
    }
    // The sandbox ended while its tunnels were opening (say its command does not exist): it has none.
    return this.#closed ? [] : out;
  }

  /** Open client connections right now. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Drops every open connection, and refuses new ones for `refuseMs` (fault injection). */
  cut(refuseMs = 0): void {
    this.#refuseUntil = Date.now() + refuseMs;
    for (const s of [...this.#sockets]) s.destroy();
  }

  /** Closes listeners and connections. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const server of this.#servers) server.close();
    for (const s of [...this.#sockets]) s.destroy();
  }

  #listen(server: Server): Promise<number> {
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      // Closed before it listened: its listen callback never runs.
      server.once("close", () => resolve(0));
      server.listen(0, this.bindHost, () => {
        // Closed while listening (the sandbox ended during create): do not leak the listener.
        if (this.#closed) server.close();
        const addr = server.address();
        resolve(typeof addr === "object" && addr ? addr.port : 0);
      });
    });
  }

  #forward(client: Socket, containerPort: number): void {
    if (this.#closed || Date.now() < this.#refuseUntil) {
      client.destroy();
      return;
    }
    this.#sockets.add(client);
    this.activity.opened();
    let upstream: Socket | undefined;
    let answered = false;
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      this.#sockets.delete(client);
      if (this.resetRefused && !answered && !client.destroyed) resetSocket(client);
      client.destroy();
      upstream?.destroy();
      this.activity.closed();
    };
    client.on("error", end);
    client.on("close", end);
    client.pause();
    void this.upstreamFor(containerPort).then(
      (target) => {
        if (done) return;
        upstream = target.kind === "tcp" ? connect(target.port, target.host) : connect(target.path);
        upstream.on("error", end);
        upstream.on("close", end);
        upstream.once("data", () => {
          answered = true;
        });
        upstream.on("connect", () => {
          client.pipe(upstream!);
          // Ended by hand: a refused connection must reach the client as a reset, not a FIN.
          upstream!.pipe(client, { end: false });
          upstream!.on("end", () => {
            if (this.resetRefused && !answered) resetSocket(client);
            else client.end();
          });
          client.resume();
        });
      },
      () => end(),
    );
  }
}

/** Resets a connection (RST). A TLS socket is reset through the TCP socket under it (Node keeps it as `_parent`). */
function resetSocket(socket: Socket): void {
  const raw = (socket as Socket & { _parent?: Socket })._parent ?? socket;
  try {
    raw.resetAndDestroy();
  } catch {
    // Not a TCP handle (or already gone): a plain close is the best we can do.
  }
}

/**
 * Source of the relay that runs inside a sandbox's network namespace (started with `nsenter -n`): for each
 * port it listens on `<dir>/<port>.sock` (a path on the shared filesystem, reachable from the host) and
 * forwards to `127.0.0.1:<port>` inside the namespace. It prints `ready` once listening and exits when its
 * stdin closes (the emulator went away).
 */
export const RELAY_SOURCE = `
const net = require("node:net"), fs = require("node:fs"), path = require("node:path");
const [dir, ...ports] = process.argv.slice(1);
let pending = ports.length;
for (const p of ports) {
  const sock = path.join(dir, p + ".sock");
  try { fs.unlinkSync(sock); } catch {}
  net.createServer((c) => {
    const u = net.connect(Number(p), "127.0.0.1");
    const end = () => { c.destroy(); u.destroy(); };
    c.on("error", end); u.on("error", end); c.on("close", end); u.on("close", end);
    c.pipe(u); u.pipe(c);
  }).listen(sock, () => { if (--pending === 0) process.stdout.write("ready\\n"); });
}
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
`;

/** A running relay process and a promise that settles once it listens. */
export interface Relay {
  child: ChildProcess;
  ready: Promise<void>;
}

/** Starts the relay inside the network namespace of `pid`. */
export function startRelay(nsenter: string, pid: number, socketDir: string, ports: readonly number[]): Relay {
  const child = spawn(
    nsenter,
    ["-t", String(pid), "-n", "--", process.execPath, "-e", RELAY_SOURCE, socketDir, ...ports.map(String)],
    { stdio: ["pipe", "pipe", "pipe"], detached: true },
  );
  const ready = new Promise<void>((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready")) resolve();
    });
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`tunnel relay exited (${code}): ${err.trim()}`)));
  });
  ready.catch(() => {});
  return { child, ready };
}
