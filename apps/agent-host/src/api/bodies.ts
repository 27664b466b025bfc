import {
  type Action,
  ActionSchema,
  InvalidArgumentError,
  isRuntimeError,
  parseAction,
  parseOrThrow,
  RENAMED_OVERRIDES,
  RuntimeError,
  renamedOptionIssues,
} from "@agent-runtime/runtime-core";
import type { Context } from "hono";
import type { z } from "zod";
import { type CreateSessionBody, CreateSessionBodySchema } from "./schemas.js";

/**
 * A request body of a route: the schema the OpenAPI document shows, and the one parse of the body with it
 * (every issue as `body.<path>: message`). The route hands the parsed value to the host.
 */
export interface BodySpec<T> {
  readonly schema: z.ZodType;
  parse(input: unknown): T;
}

/** The request's JSON body (`undefined` for an empty one); INVALID_ARGUMENT `body: not valid JSON` otherwise. */
export async function readJsonBody(c: Context): Promise<unknown> {
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

/** A route's query string parsed with `schema` (issues as `query.<name>: message`). */
export function parseQuery<T extends z.ZodObject>(c: Context, schema: T): z.output<T> {
  return parseOrThrow(schema, c.req.query(), "query", "query");
}

/**
 * `POST /v1/sessions`: renamed fields name their replacement (`body.cpu: this option is now "cpuCores"`), then
 * {@link CreateSessionBodySchema}. An empty body is `{}`.
 */
export const createSessionBody: BodySpec<CreateSessionBody> = {
  schema: CreateSessionBodySchema,
  parse(input) {
    const body = input ?? {};
    const renamed = renamedOptionIssues(body, RENAMED_OVERRIDES).map((issue) => `body.${issue}`);
    if (renamed.length > 0)
      throw new InvalidArgumentError(`Invalid session:\n  ${renamed.join("\n  ")}`, renamed);
    return parseOrThrow(CreateSessionBodySchema, body, "session", "body");
  },
};

/** `POST /v1/sessions/:id/actions`: an action in OpenHands wire form, parsed once by runtime-core's `parseAction`. */
export const actionBody: BodySpec<Action> = {
  schema: ActionSchema,
  parse: (input) => parseAction(input, "body"),
};

/**
 * The runtime provider's refusal of a create body (INVALID_ARGUMENT or UNSUPPORTED naming fields), its issues
 * rooted at `body` like the route's own (`body.gpu: ...`); other errors pass as they are.
 */
export function rootedAtBody(err: unknown): unknown {
  if (!isRuntimeError(err) || !Array.isArray(err.details?.issues)) return err;
  const issues = (err.details.issues as unknown[]).map((issue) => `body.${String(issue)}`);
  return new RuntimeError(err.code, err.message, { details: { ...err.details, issues }, cause: err });
}
