import type { Context } from "hono";
import { z } from "zod";
import type { AgentHost } from "../host.js";
import {
  actionBody,
  type BodySpec,
  createSessionBody,
  parseQuery,
  readJsonBody,
  rootedAtBody,
} from "./bodies.js";
import {
  CostsQuerySchema,
  CostsSchema,
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
import { eventStream, lastEventId, taskEventStream } from "./sse.js";

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
  /** The query schema: the document shows it, and the route parses the query string with it. */
  query?: z.ZodObject;
  /** The body schema: the document shows it, and the route parses the body with it (once). */
  body?: z.ZodType;
  responses: Record<number, ResponseSpec>;
  /** Serves the route: parses its query and body, then calls the host with typed values. */
  handler: (c: Context) => Promise<Response> | Response;
}

/** What a route's handler receives besides the request: its body and query, parsed. */
interface RouteInput<TBody, TQuery> {
  body: TBody;
  query: TQuery;
}

type QueryOf<TQuery> = TQuery extends z.ZodObject ? z.output<TQuery> : undefined;

/** A route as written in the table: a typed body and query, and a handler that gets them parsed. */
type RouteDefinition<TBody, TQuery extends z.ZodObject | undefined> = Omit<
  RouteSpec,
  "body" | "query" | "handler"
> & {
  body?: BodySpec<TBody>;
  query?: TQuery;
  handler: (c: Context, input: RouteInput<TBody, QueryOf<TQuery>>) => Promise<Response> | Response;
};

/**
 * A {@link RouteSpec} whose handler parses the query and the body with the schemas the document shows (each
 * once, issues as `query.<name>` and `body.<path>`) before the typed handler runs.
 */
function route<TBody = undefined, TQuery extends z.ZodObject | undefined = undefined>(
  definition: RouteDefinition<TBody, TQuery>,
): RouteSpec {
  const { body, query, handler, ...rest } = definition;
  return {
    ...rest,
    ...(body ? { body: body.schema } : {}),
    ...(query ? { query } : {}),
    handler: async (c) => {
      const q = (query ? parseQuery(c, query) : undefined) as QueryOf<TQuery>;
      const b = (body ? body.parse(await readJsonBody(c)) : undefined) as TBody;
      return handler(c, { body: b, query: q });
    },
  };
}

const errorResponse = (description: string): ResponseSpec => ({ description, schema: ErrorBodySchema });
const common = {
  400: errorResponse("Invalid input; `error.issues` lists every problem as `path: message`."),
  401: errorResponse("Missing or wrong bearer token."),
};

/** The API's routes, each with its handler and its OpenAPI description. */
export function apiRoutes(host: AgentHost): RouteSpec[] {
  const notFound = errorResponse("No such session or task.");
  return [
    route({
      method: "get",
      path: "/health",
      operationId: "health",
      summary: "Liveness of the host (no token needed).",
      tags: ["meta"],
      auth: false,
      responses: { 200: { description: "The host is up.", schema: HealthSchema } },
      handler: (c) => c.json({ ok: true, backend: host.backend, sessions: { open: host.openSessionCount } }),
    }),
    route({
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
    }),
    route({
      method: "post",
      path: "/v1/sessions",
      operationId: "createSession",
      summary: "Create a session; its sandbox starts in the background.",
      description:
        "Returns with status `starting` once the sandbox's cost is reserved; poll `GET /v1/sessions/{id}?waitMs=` or follow the event stream until `ready`. A budget that cannot fit the sandbox's worst-case cost refuses at once with 402 (`error.details`: `budget`, `limitUsd`, `spentUsd`, `reservedUsd`, `requestedUsd`, `currency`); nothing is created then.",
      tags: ["sessions"],
      auth: true,
      body: createSessionBody,
      responses: {
        201: { description: "The session, status `starting`.", schema: SessionSchema },
        ...common,
        402: errorResponse(
          "A budget cannot fit the sandbox's worst-case cost; `error.details` has the budget's numbers (USD). No session was created.",
        ),
        409: errorResponse("A session with this id exists."),
        429: errorResponse("sessions.maxSessions reached."),
      },
      handler: async (c, { body }) => {
        const session = await host.createSession(body).catch((err: unknown) => {
          throw rootedAtBody(err);
        });
        return c.json(session, 201);
      },
    }),
    route({
      method: "get",
      path: "/v1/sessions",
      operationId: "listSessions",
      summary: "List sessions (also closed ones), oldest first.",
      tags: ["sessions"],
      auth: true,
      responses: { 200: { description: "Sessions.", schema: SessionListSchema }, 401: common[401] },
      handler: (c) => c.json({ sessions: host.listSessions() }),
    }),
    route({
      method: "get",
      path: "/v1/sessions/:id",
      operationId: "getSession",
      summary: "Get a session; with `waitMs`, wait while it is `starting` or `closing`.",
      tags: ["sessions"],
      auth: true,
      query: WaitQuerySchema,
      responses: { 200: { description: "The session.", schema: SessionSchema }, ...common, 404: notFound },
      handler: async (c, { query }) =>
        c.json(await host.waitSession(c.req.param("id")!, query.waitMs, c.req.raw.signal)),
    }),
    route({
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
    }),
    route({
      method: "post",
      path: "/v1/sessions/:id/actions",
      operationId: "submitAction",
      summary: "Queue an action; returns a task at once (202).",
      description:
        'The body is an action in OpenHands wire form, e.g. `{"action":"run","args":{"command":"ls"}}`. Actions of a session run one at a time in order. Poll `GET /v1/tasks/{id}?waitMs=` for the observation.',
      tags: ["tasks"],
      auth: true,
      body: actionBody,
      responses: {
        202: { description: "The queued task.", schema: TaskSchema },
        ...common,
        404: notFound,
        409: errorResponse("The session is not starting or ready (closed, or its sandbox failed)."),
        429: errorResponse("sessions.maxQueuedTasks reached for this session."),
      },
      handler: (c, { body }) => c.json(host.submitAction(c.req.param("id")!, body), 202),
    }),
    route({
      method: "get",
      path: "/v1/sessions/:id/tasks",
      operationId: "listTasks",
      summary: "List a session's tasks in queue order.",
      tags: ["tasks"],
      auth: true,
      query: TaskListQuerySchema,
      responses: { 200: { description: "Tasks.", schema: TaskListSchema }, ...common, 404: notFound },
      handler: (c, { query }) => c.json({ tasks: host.listTasks(c.req.param("id")!, query) }),
    }),
    route({
      method: "get",
      path: "/v1/sessions/:id/events",
      operationId: "sessionEvents",
      summary:
        "Server-sent events of a session: `session` (state), `status` (runtime status), `task` (queued, running, finished with the observation), `output` (a running command's output, live).",
      description:
        "Without `after` or `Last-Event-ID`, the stream starts with a `session` snapshot and then live events; with one, stored events after that id are replayed first. Each stored event has an `id`. `output` events (`{taskId, seq, content, at, skipped?}`, secrets redacted) carry no `id`: they are not stored and never replayed (the task's observation holds the output); `seq` counts per task, and `skipped` says how many were left out for a client reading too slowly. The stream ends when the session is closed.",
      tags: ["sessions"],
      auth: true,
      query: EventsQuerySchema,
      responses: {
        200: { description: "An event stream.", contentType: "text/event-stream", schema: z.string() },
        ...common,
        404: notFound,
      },
      handler: (c, { query }) => {
        const id = c.req.param("id")!;
        host.getSession(id);
        return eventStream(c, host, id, lastEventId(c, query.after));
      },
    }),
    route({
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
      handler: async (c, { query }) =>
        c.json(await host.waitTask(c.req.param("id")!, query.waitMs, c.req.raw.signal)),
    }),
    route({
      method: "get",
      path: "/v1/tasks/:id/events",
      operationId: "taskEvents",
      summary:
        "Server-sent events of one task: `task` (its state), `output` (its command's output, live), then the end.",
      description:
        "Starts with a `task` snapshot; while the task runs, its latest output kept in memory (up to 64 KiB) comes next, then each new `output` event (`{taskId, seq, content, at, skipped?}`, secrets redacted, not stored) and each `task` change. The stream ends after the `task` event that finishes it (holding the observation); a finished task's stream is its snapshot only.",
      tags: ["tasks"],
      auth: true,
      responses: {
        200: { description: "An event stream.", contentType: "text/event-stream", schema: z.string() },
        401: common[401],
        404: notFound,
      },
      handler: (c) => {
        const id = c.req.param("id")!;
        host.getTask(id);
        return taskEventStream(c, host, id);
      },
    }),
    route({
      method: "get",
      path: "/v1/costs",
      operationId: "getCosts",
      summary: "Settled spend grouped by session, user, day, month, provider or GPU, and every budget.",
      tags: ["costs"],
      auth: true,
      query: CostsQuerySchema,
      responses: { 200: { description: "Costs and budgets.", schema: CostsSchema }, ...common },
      handler: (c, { query }) => c.json(host.costs(query.by)),
    }),
  ];
}
