import type { IncomingMessage, ServerResponse } from "node:http";
import { type Logger, parseAction } from "@agent-runtime/runtime-core";
import type { ActionExecutor } from "../actions/executor.js";
import type { ExtractLimits } from "../zip/extract.js";
import { sessionKeyMatches } from "./auth.js";
import { drainBody, readJsonBody } from "./body.js";
import { downloadFiles, listFiles, uploadFile } from "./file-routes.js";
import { HttpError, invalidRequest, toHttpError } from "./http-error.js";
import type { ServerInfoProbe } from "./server-info.js";
import { streamAction, wantsStream } from "./stream-action.js";

/** What the routes need. */
export interface RouterContext {
  executor: ActionExecutor;
  probe: ServerInfoProbe;
  workingDir: string;
  sessionApiKey: string | undefined;
  maxUploadBytes: number;
  maxJsonBodyBytes: number;
  /** Bytes of an unread body drained before an early answer (see the option of the same name). */
  maxDrainBytes: number;
  zipLimits: ExtractLimits;
  zipLevel: number;
  mcpServers: { value: unknown[] };
  logger: Logger;
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

/** Paths answered without a session key (liveness and diagnostics). */
const OPEN_PATHS = new Set(["/alive", "/server_info"]);

/**
 * The request handler: auth first (an unknown path without a key is 403, like the reference), then the
 * route (`HEAD` runs the `GET` route without sending a body), then one error boundary ({@link toHttpError})
 * that turns failures into `{"detail": ...}` answers. Every JSON answer first drains what is left of the
 * request body (bounded by `maxDrainBytes`), so a client still sending sees the status, not EPIPE.
 */
export function createRouter(ctx: RouterContext): (req: IncomingMessage, res: ServerResponse) => void {
  const sendJson = async (req: IncomingMessage, res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    // A client still sending its body reads no answer before it is done: read the rest first (bounded).
    const drained = await drainBody(req, ctx.maxDrainBytes);
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number> = {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
    };
    if (!drained) headers.connection = "close";
    res.writeHead(status, headers);
    res.end(req.method === "HEAD" ? undefined : text);
  };
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/alive": { GET: (req, res) => sendJson(req, res, 200, { status: "ok" }) },
    "/server_info": {
      GET: (req, res) => sendJson(req, res, 200, ctx.probe.read(ctx.executor.lastActionAt)),
    },
    "/execute_action": {
      POST: async (req, res) => {
        const body = await readJsonBody(req, ctx.maxJsonBodyBytes);
        if (typeof body !== "object" || body === null || Array.isArray(body)) {
          throw invalidRequest([
            'body: expected an object like {"action": {"action": "run", "args": {...}}}',
          ]);
        }
        if (!("action" in body)) throw invalidRequest(["action: required"]);
        // The trust boundary: parsed once here; everything after works on the typed action.
        const action = parseAction((body as { action: unknown }).action, "action");
        if (wantsStream(req)) return streamAction(req, res, ctx.executor, action, ctx.logger);
        const observation = await ctx.executor.execute(action);
        await sendJson(req, res, 200, observation);
      },
    },
    "/list_files": {
      POST: async (req, res) =>
        sendJson(
          req,
          res,
          200,
          await listFiles(await readJsonBody(req, ctx.maxJsonBodyBytes), ctx.workingDir),
        ),
    },
    "/upload_file": {
      POST: async (req, res, url) =>
        sendJson(
          req,
          res,
          200,
          await uploadFile(req, url, { maxUploadBytes: ctx.maxUploadBytes, zip: ctx.zipLimits }),
        ),
    },
    "/download_files": { GET: (req, res, url) => downloadFiles(req, url, res, ctx.zipLevel) },
    "/vscode/connection_token": { GET: (req, res) => sendJson(req, res, 200, { token: null }) },
    "/update_mcp_server": {
      POST: async (req, res) => {
        const body = await readJsonBody(req, ctx.maxJsonBodyBytes);
        if (!Array.isArray(body))
          throw new HttpError(400, "Expected a JSON list of MCP stdio server configs");
        const issues: string[] = [];
        body.forEach((s: unknown, i) => {
          if (typeof s !== "object" || s === null)
            issues.push(`[${i}]: expected an object with name, command, args, env`);
          else {
            const c = s as Record<string, unknown>;
            if (typeof c.name !== "string") issues.push(`[${i}].name: expected a string`);
            if (typeof c.command !== "string") issues.push(`[${i}].command: expected a string`);
            if (c.args !== undefined && !Array.isArray(c.args))
              issues.push(`[${i}].args: expected a list of strings`);
            if (c.env !== undefined && (typeof c.env !== "object" || c.env === null))
              issues.push(`[${i}].env: expected an object`);
          }
        });
        if (issues.length > 0)
          throw new HttpError(400, `Invalid MCP server configs: ${issues.join("; ")}`, { errors: issues });
        ctx.mcpServers.value = body;
        // OpenHands' answer, word for word; what this server cannot do goes in the router's error log.
        await sendJson(req, res, 200, {
          detail: "MCP server updated successfully",
          router_error_log: `Stored ${body.length} MCP stdio server config(s), but this action-server has no MCP proxy: the servers are not started and /mcp/sse is not served. Run MCP tools from the host.`,
        });
      },
    },
  };

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const handle = async () => {
      if (ctx.sessionApiKey !== undefined && !OPEN_PATHS.has(url.pathname)) {
        if (!sessionKeyMatches(req.headers["x-session-api-key"], ctx.sessionApiKey)) {
          throw new HttpError(403, "Invalid API Key");
        }
      }
      const route = routes[url.pathname];
      if (!route) throw new HttpError(404, "Not Found");
      const method = req.method ?? "GET";
      const handler = route[method] ?? (method === "HEAD" ? route.GET : undefined);
      if (!handler) throw new HttpError(405, "Method Not Allowed");
      await handler(req, res, url);
    };
    handle().catch(async (err: unknown) => {
      const httpError = toHttpError(err);
      if (httpError.status >= 500)
        ctx.logger.error("request failed", { path: url.pathname, error: httpError.message });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      await sendJson(req, res, httpError.status, httpError.body());
    });
  };
}
