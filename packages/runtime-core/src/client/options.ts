import type { Logger } from "../logger.js";

/** Retry policy for protocol errors and HTTP 429. */
export interface RetryPolicy {
  /** Attempts in total, including the first. @default 4 */
  maxAttempts: number;
  /** First back-off delay in ms, doubled each time with jitter. @default 200 */
  baseDelayMs: number;
  /** Largest back-off delay in ms. @default 5000 */
  maxDelayMs: number;
}

/** Options of {@link ActionExecutionClient}. */
export interface ActionExecutionClientOptions {
  /** Base URL of the action server, e.g. `http://127.0.0.1:38211` or a Modal tunnel `https://...`. */
  baseUrl: string;
  /** Sent as `X-Session-API-Key` on every request. Never logged. */
  sessionApiKey?: string;
  /** Reach the server through this unix socket (the URL then only names the Host header). */
  socketPath?: string;
  /** Extra CA (PEM) to trust for an `https` base URL (e.g. modal-emulator's CA). */
  caCertPem?: string;
  /** Hard timeout applied to actions that have none, in ms (OpenHands' `sandbox.timeout`). @default 120000 */
  defaultActionTimeoutMs?: number;
  /** Added to an action's timeout to get the HTTP deadline, in ms. @default 5000 */
  httpGraceMs?: number;
  /** @default { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5000 } */
  retry?: Partial<RetryPolicy>;
  /**
   * Idle keep-alive connections are closed after this many ms. Keep it short: Modal counts an open tunnel
   * connection as activity, so a long-lived idle socket would delay the sandbox's idle timeout. @default 5000
   */
  idleSocketTimeoutMs?: number;
  /** @default quietLogger */
  logger?: Logger;
}

/** The `/server_info` payload. */
export interface ServerInfo {
  uptime: number;
  idle_time: number;
  resources?: Record<string, unknown>;
  [key: string]: unknown;
}

/** An MCP stdio server entry for `/update_mcp_server`. */
export interface McpStdioServer {
  name: string;
  command: string;
  args?: string[];
  env?: Record<string, string>;
}
