import { ActionSchema, InvalidArgumentError, parseOrThrow } from "@agent-runtime/runtime-core";
import type { Context } from "hono";
import { z } from "zod";
import type { AgentHost, HostEvent } from "../host.js";
import {
  CostsQuerySchema,
  CostsSchema,
  CreateSessionBodySchema,
  ErrorBodySchema,
  EventsQuerySchema,
  HealthSchema,
  SessionListSchema,
  SessionSchema,
  TaskListQuerySchema,
  TaskListSchema,
  TaskSchema,
  WaitQuerySchema,
} from "./schemas.js";

/** One documented response of a route. */
export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** @default "application/json" */
  contentType?: string;
}

/** A route of the API: served by the app and described in the OpenAPI document from the same entry. */
export interface RouteSpec {
  method: "get" | "post" | "delete";
  /** Hono path (`/v1/sessions/:id`). */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** Requires the bearer token when one is configured. */
  auth: boolean;
  query?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, ResponseSpec>;
  handler: (c: Context) => Promise<Response> | Response;
}

const errorResponse = (description: string): ResponseSpec => ({ description, schema: ErrorBodySchema });
const common = {
  400: errorResponse("Invalid input; `error.issues` lists every problem as `path: message`."),
  401: errorResponse("Missing or wrong bearer token."),
};

function query<T extends z.ZodObject>(c: Context, schema: T): z.output<T> {
  return parseOrThrow(schema, c.req.query(), "query", "query");
}

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidArgumentError(
      "Invalid body: body: not valid JSON; send a JSON object with Content-Type: application/json",
      ["body: not valid JSON"],
    );
  }
}

/** Formats one server-sent event. */
export function sseFrame(event: { id?: number; event: string; data: unknown }): string {
  const lines = JSON.stringify(event.data)
    .split("\n")
    .map((l) => `data: ${l}`)
    .join("\n");
  return `${event.id !== undefined ? `id: ${event.id}\n` : ""}event: ${event.event}\n${lines}\n\n`;
}

function eventStream(c: Context, host: AgentHost, sessionId: string, afterId: number | undefined): Response {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      let lastId = afterId ?? 0;
      const send = (text: string) => {
        if (open) controller.enqueue(encoder.encode(text));
      };
      const end = () => {
        if (!open) return;
        open = false;
        cleanup();
        controller.close();
      };
      const deliver = (event: HostEvent) => {
        if (event.id <= lastId) return;
        lastId = event.id;
        send(
          sseFrame({
            id: event.id,
            event: event.type,
            data: { ...event.data, at: new Date(event.atMs).toISOString() },
          }),
        );
      };
      const sub = host.subscribe(sessionId, afterId, (event) => {
        if (event === null) end();
        else deliver(event);
      });
      const heartbeat = setInterval(() => send(": keep-alive\n\n"), host.config.server.sseHeartbeatMs);
      heartbeat.unref();
      const onAbort = () => end();
      cleanup = () => {
        clearInterval(heartbeat);
        sub.unsubscribe();
        c.req.raw.signal.removeEventListener("abort", onAbort);
      };
      c.req.raw.signal.addEventListener("abort", onAbort, { once: true });
      send("retry: 2000\n\n");
      if (afterId === undefined)
        send(sseFrame({ event: "session", data: { session: host.getSession(sessionId) } }));
      for (const event of sub.backlog) deliver(event);
      // A closed session has nothing more to say: replay, then end.
      if (host.getSession(sessionId).status === "closed") end();
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    },
  });
}

function lastEventId(c: Context, fromQuery: number | undefined): number | undefined {
  const header = c.req.header("last-event-id");
  if (header !== undefined && /^\d+$/.test(header.trim())) return Number(header.trim());
  return fromQuery;
}

/** The API's routes, each with its handler and its OpenAPI description. */
export function apiRoutes(host: AgentHost): RouteSpec[] {
  const notFound = errorResponse("No such session or task.");
  return [
    {
      method: "get",
      path: "/health",
      operationId: "health",
      summary: "Liveness of the host (no token needed).",
      tags: ["meta"],
      auth: false,
      responses: { 200: { description: "The host is up.", schema: HealthSchema } },
      handler: (c) => c.json({ ok: true, backend: host.backend, sessions: { open: host.openSessionCount } }),
    },
    {
      method: "get",
      path: "/openapi.json",
      operationId: "openapi",
      summary: "This OpenAPI 3.1 document (no token needed).",
      tags: ["meta"],
      auth: false,
      responses: { 200: { description: "The OpenAPI document." } },
      handler: () => {
        throw new Error("replaced by the app");
      },
    },
    {
      method: "post",
      path: "/v1/sessions",
      operationId: "createSession",
      summary: "Create a session; its sandbox starts in the background.",
      description:
        "Returns with status `starting` once the sandbox's cost is reserved; poll `GET /v1/sessions/{id}?waitMs=` or follow the event stream until `ready`. A budget that cannot fit the sandbox's worst-case cost refuses at once with 402 (`error.details`: `budget`, `limitUsd`, `spentUsd`, `reservedUsd`, `requestedUsd`, `currency`); nothing is created then.",
      tags: ["sessions"],
      auth: true,
      body: CreateSessionBodySchema,
      responses: {
        201: { description: "The session, status `starting`.", schema: SessionSchema },
        ...common,
        402: errorResponse(
          "A budget cannot fit the sandbox's worst-case cost; `error.details` has the budget's numbers (USD). No session was created.",
        ),
        409: errorResponse("A session with this id exists."),
        429: errorResponse("sessions.maxSessions reached."),
      },
      handler: async (c) => c.json(await host.createSession(await jsonBody(c)), 201),
    },
    {
      method: "get",
      path: "/v1/sessions",
      operationId: "listSessions",
      summary: "List sessions (also closed ones), oldest first.",
      tags: ["sessions"],
      auth: true,
      responses: { 200: { description: "Sessions.", schema: SessionListSchema }, 401: common[401] },
      handler: (c) => c.json({ sessions: host.listSessions() }),
    },
    {
      method: "get",
      path: "/v1/sessions/:id",
      operationId: "getSession",
      summary: "Get a session; with `waitMs`, wait while it is `starting` or `closing`.",
      tags: ["sessions"],
      auth: true,
      query: WaitQuerySchema,
      responses: { 200: { description: "The session.", schema: SessionSchema }, ...common, 404: notFound },
      handler: async (c) => {
        const { waitMs } = query(c, WaitQuerySchema);
        return c.json(await host.waitSession(c.req.param("id")!, waitMs, c.req.raw.signal));
      },
    },
    {
      method: "delete",
      path: "/v1/sessions/:id",
      operationId: "deleteSession",
      summary: "Close a session: cancel queued actions, stop the sandbox, settle its cost.",
      tags: ["sessions"],
      auth: true,
      responses: {
        200: { description: "The session, status `closed`.", schema: SessionSchema },
        401: common[401],
        404: notFound,
      },
      handler: async (c) => c.json(await host.deleteSession(c.req.param("id")!)),
    },
    {
      method: "post",
      path: "/v1/sessions/:id/actions",
      operationId: "submitAction",
      summary: "Queue an action; returns a task at once (202).",
      description:
        'The body is an action in OpenHands wire form, e.g. `{"action":"run","args":{"command":"ls"}}`. Actions of a session run one at a time in order. Poll `GET /v1/tasks/{id}?waitMs=` for the observation.',
      tags: ["tasks"],
      auth: true,
      body: ActionSchema,
      responses: {
        202: { description: "The queued task.", schema: TaskSchema },
        ...common,
        404: notFound,
        409: errorResponse("The session is not starting or ready (closed, or its sandbox failed)."),
        429: errorResponse("sessions.maxQueuedTasks reached for this session."),
      },
      handler: async (c) => c.json(host.submitAction(c.req.param("id")!, await jsonBody(c)), 202),
    },
    {
      method: "get",
      path: "/v1/sessions/:id/tasks",
      operationId: "listTasks",
      summary: "List a session's tasks in queue order.",
      tags: ["tasks"],
      auth: true,
      query: TaskListQuerySchema,
      responses: { 200: { description: "Tasks.", schema: TaskListSchema }, ...common, 404: notFound },
      handler: (c) => {
        const q = query(c, TaskListQuerySchema);
        return c.json({ tasks: host.listTasks(c.req.param("id")!, q) });
      },
    },
    {
      method: "get",
      path: "/v1/sessions/:id/events",
      operationId: "sessionEvents",
      summary:
        "Server-sent events of a session: `session` (state), `status` (runtime status), `task` (queued, running, finished with the observation).",
      description:
        "Without `after` or `Last-Event-ID`, the stream starts with a `session` snapshot and then live events; with one, stored events after that id are replayed first. Each stored event has an `id`. The stream ends when the session is closed.",
      tags: ["sessions"],
      auth: true,
      query: EventsQuerySchema,
      responses: {
        200: { description: "An event stream.", contentType: "text/event-stream", schema: z.string() },
        ...common,
        404: notFound,
      },
      handler: (c) => {
        const { after } = query(c, EventsQuerySchema);
        const id = c.req.param("id")!;
        host.getSession(id);
        return eventStream(c, host, id, lastEventId(c, after));
      },
    },
    {
      method: "get",
      path: "/v1/tasks/:id",
      operationId: "getTask",
      summary: "Get a task; with `waitMs`, long-poll until it finishes (or the wait ends).",
      tags: ["tasks"],
      auth: true,
      query: WaitQuerySchema,
      responses: {
        200: {
          description: "The task (still `queued`/`running` when the wait ended first).",
          schema: TaskSchema,
        },
        ...common,
        404: notFound,
      },
      handler: async (c) => {
        const { waitMs } = query(c, WaitQuerySchema);
        return c.json(await host.waitTask(c.req.param("id")!, waitMs, c.req.raw.signal));
      },
    },
    {
      method: "get",
      path: "/v1/costs",
      operationId: "getCosts",
      summary: "Settled spend grouped by session, user, day, month, provider or GPU, and every budget.",
      tags: ["costs"],
      auth: true,
      query: CostsQuerySchema,
      responses: { 200: { description: "Costs and budgets.", schema: CostsSchema }, ...common },
      handler: (c) => c.json(host.costs(query(c, CostsQuerySchema).by)),
    },
  ];
}
