import { createHash, timingSafeEqual } from "node:crypto";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AgentHost } from "../host.js";
import { VERSION } from "../version.js";
import { toErrorResponse } from "./errors.js";
import { buildOpenApiDocument } from "./openapi.js";
import { apiRoutes, type RouteSpec } from "./routes.js";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Bearer token required on routes that need auth; undefined: no auth (opted out; loopback only, enforced by the server). */
  token?: string;
}

const digest = (value: string): Buffer => createHash("sha256").update(value).digest();

/** True when `header` carries `Bearer <token>` (compared in constant time). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!match) return false;
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/**
 * The HTTP API of a host as a Hono app: the routes of {@link apiRoutes}, bearer auth, body limits, JSON errors
 * (`{ error: { code, message, issues? } }`) and `/openapi.json` describing every route.
 */
export function createApp(
  host: AgentHost,
  options: AppOptions = {},
): { app: Hono; routes: RouteSpec[]; openapi: Record<string, unknown> } {
  const app = new Hono();
  const routes = apiRoutes(host);
  const openapi = buildOpenApiDocument(routes, {
    version: VERSION,
    authRequired: options.token !== undefined,
  });
  const token = options.token;

  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500 && status !== 501 && status !== 502 && status !== 503) {
      host.logger.error("request failed", { method: c.req.method, path: c.req.path, code: body.error.code });
    }
    return c.json(body, status as 400);
  });
  app.notFound((c) =>
    c.json(
      {
        error: {
          code: "NOT_FOUND",
          message: `No route ${c.req.method} ${c.req.path}; see GET /openapi.json for the routes.`,
        },
      },
      404,
    ),
  );

  const limit = bodyLimit({
    maxSize: host.config.server.maxBodyBytes,
    onError: (c) => {
      // The rest of the body is not read: the connection cannot be reused.
      c.header("Connection", "close");
      return c.json(
        {
          error: {
            code: "INVALID_ARGUMENT",
            message: `body: larger than server.maxBodyBytes (${host.config.server.maxBodyBytes} bytes)`,
            issues: ["body: too large"],
          },
        },
        413,
      );
    },
  });

  for (const route of routes) {
    const handler = route.operationId === "openapi" ? () => Response.json(openapi) : route.handler;
    app.on(
      route.method.toUpperCase(),
      route.path,
      async (c, next) => {
        if (route.auth && token !== undefined && !bearerMatches(c.req.header("authorization"), token)) {
          c.header("WWW-Authenticate", 'Bearer realm="agent-host"');
          const message = c.req.header("authorization")
            ? "The bearer token is wrong; send the content of the host's token file (<state dir>/token), or the value of its token variable (server.tokenEnv) when that is set."
            : "Missing bearer token: send Authorization: Bearer <token>, the content of the host's token file (<state dir>/token, e.g. Bearer $(cat ~/.local/state/agent-host/token)), or the value of its token variable (server.tokenEnv) when that is set.";
          return c.json({ error: new RuntimeError("UNAUTHORIZED", message).toJSON() }, 401);
        }
        await next();
      },
      limit,
      (c) => handler(c),
    );
  }
  return { app, routes, openapi };
}
