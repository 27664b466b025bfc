import { existsSync } from "node:fs";
import { DockerEngineError } from "./errors.js";

/** Where an engine listens: a unix socket, or plain HTTP on a TCP address (no TLS). */
export type EngineEndpoint = { socketPath: string } | { host: string; port: number };

/** The sockets tried, in order, when neither an `engine` option nor `DOCKER_HOST` names one. */
export function defaultSocketCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out = ["/var/run/docker.sock", "/run/podman/podman.sock"];
  if (env.XDG_RUNTIME_DIR) out.push(`${env.XDG_RUNTIME_DIR}/podman/podman.sock`);
  return out;
}

/**
 * Parses an engine address as Docker's CLI writes it: `unix:///path/to/docker.sock`, an absolute socket path,
 * or `tcp://host:port` (plain HTTP; TLS is not supported). Throws INVALID_ARGUMENT naming `what`.
 */
export function parseEngineAddress(address: string, what = "engine"): EngineEndpoint {
  const text = address.trim();
  if (text.startsWith("/")) return { socketPath: text };
  if (text.startsWith("unix://")) {
    const path = text.slice("unix://".length);
    if (!path.startsWith("/")) {
      throw new DockerEngineError(
        "INVALID_ARGUMENT",
        `${what}: ${JSON.stringify(address)} has no absolute socket path; write it as unix:///path/to/docker.sock`,
      );
    }
    return { socketPath: path };
  }
  const tcp = /^(?:tcp|http):\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(text);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port >= 1 && port <= 65535) return { host: (tcp[1] as string).replace(/^\[|\]$/g, ""), port };
  }
  throw new DockerEngineError(
    "INVALID_ARGUMENT",
    `${what}: ${JSON.stringify(address)} is not an engine address; use unix:///path/to/docker.sock, an absolute socket path, or tcp://host:port (TLS is not supported)`,
  );
}

/**
 * The engine to use: `address` when given, else `DOCKER_HOST`, else the first of the usual sockets that exists
 * (Docker's `/var/run/docker.sock`, Podman's `/run/podman/podman.sock`, the rootless Podman socket). Throws
 * UNAVAILABLE, saying what was tried, when none is found.
 */
export function resolveEngineEndpoint(
  address?: string,
  env: NodeJS.ProcessEnv = process.env,
): EngineEndpoint {
  if (address !== undefined) return parseEngineAddress(address, "engine");
  if (env.DOCKER_HOST) return parseEngineAddress(env.DOCKER_HOST, "DOCKER_HOST");
  const candidates = defaultSocketCandidates(env);
  const found = candidates.find((path) => existsSync(path));
  if (found) return { socketPath: found };
  throw new DockerEngineError(
    "UNAVAILABLE",
    `No container engine found: DOCKER_HOST is not set and none of ${candidates.join(", ")} exists. Start Docker, or Podman's Docker-compatible service (podman system service --time=0 unix:///run/podman/podman.sock), or pass the engine's address (unix:///path/to/socket).`,
  );
}

/** The endpoint as an address string, for messages. */
export function endpointText(endpoint: EngineEndpoint): string {
  return "socketPath" in endpoint
    ? `unix://${endpoint.socketPath}`
    : `tcp://${endpoint.host}:${endpoint.port}`;
}
