import { ActionSchema, ObservationSchema } from "@agent-runtime/runtime-core";
import { z } from "zod";
import type { RouteSpec } from "./routes.js";
import {
  CostsSchema,
  CreateSessionBodySchema,
  ErrorBodySchema,
  ErrorInfoSchema,
  HealthSchema,
  SessionListSchema,
  SessionSchema,
  TaskListSchema,
  TaskSchema,
} from "./schemas.js";

/** Named schemas, emitted under `components.schemas` and referenced with `$ref`. */
const COMPONENTS: Record<string, z.ZodType> = {
  ErrorInfo: ErrorInfoSchema,
  ErrorBody: ErrorBodySchema,
  Session: SessionSchema,
  SessionList: SessionListSchema,
  Task: TaskSchema,
  TaskList: TaskListSchema,
  CreateSessionBody: CreateSessionBodySchema,
  Action: ActionSchema,
  Observation: ObservationSchema,
  Costs: CostsSchema,
  Health: HealthSchema,
};

type JsonSchema = Record<string, unknown>;

/** Converts `:id` to `{id}` and lists the path parameters. */
export function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const converted = path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: converted, params };
}

/**
 * Builds the OpenAPI 3.1 document of `routes` (JSON Schema 2020-12 from the zod schemas the handlers use):
 * every route, its parameters, body and responses, and bearer auth where the route needs it.
 */
export function buildOpenApiDocument(
  routes: readonly RouteSpec[],
  info: { version: string; authRequired: boolean },
): JsonSchema {
  const registry = z.registry<{ id: string }>();
  const byId = new Map<z.ZodType, string>();
  for (const [id, schema] of Object.entries(COMPONENTS)) {
    registry.add(schema, { id });
    byId.set(schema, id);
  }
  const params = {
    target: "draft-2020-12",
    unrepresentable: "any",
    uri: (id: string) => `#/components/schemas/${id}`,
  } as const;
  const inputs = z.toJSONSchema(registry, { ...params, io: "input" }).schemas as Record<string, JsonSchema>;
  const outputs = z.toJSONSchema(registry, { ...params, io: "output" }).schemas as Record<string, JsonSchema>;
  const components: Record<string, JsonSchema> = {};
  // Request bodies are documented as written (defaults optional), responses as returned.
  for (const id of Object.keys(COMPONENTS)) {
    const schema = id === "CreateSessionBody" || id === "Action" ? inputs[id] : outputs[id];
    if (schema) {
      // `$id` would be a fragment-only URI (invalid in 2020-12); components are addressed by their path anyway.
      const { $schema: _schema, $id: _id, ...rest } = schema;
      components[id] = rest;
    }
  }
  const ref = (schema: z.ZodType, io: "input" | "output"): JsonSchema => {
    const id = byId.get(schema);
    if (id) return { $ref: `#/components/schemas/${id}` };
    const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
      target: "draft-2020-12",
      unrepresentable: "any",
      io,
    }) as JsonSchema;
    return rest;
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const { path, params: pathParams } = openApiPath(route.path);
    const parameters: JsonSchema[] = pathParams.map((name) => ({
      name,
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    if (route.query) {
      for (const [name, field] of Object.entries(route.query.shape as Record<string, z.ZodType>)) {
        const schema = ref(field, "input");
        parameters.push({
          name,
          in: "query",
          required: false,
          ...(typeof schema.description === "string" ? { description: schema.description } : {}),
          schema,
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      responses[status] = {
        description: spec.description,
        ...(spec.schema
          ? { content: { [spec.contentType ?? "application/json"]: { schema: ref(spec.schema, "output") } } }
          : {}),
      };
    }
    paths[path] ??= {};
    paths[path][route.method] = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: route.tags,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: { "application/json": { schema: ref(route.body, "input") } },
            },
          }
        : {}),
      responses,
      security: route.auth && info.authRequired ? [{ bearerAuth: [] }] : [],
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "agent-host API",
      version: info.version,
      description:
        "Sessions run agent actions in isolated sandboxes. Actions are submitted asynchronously (202 + task id); poll or long-poll the task, or follow the session's event stream.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: "/" }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "The value of the host's token environment variable (server.tokenEnv).",
        },
      },
    },
  };
}
