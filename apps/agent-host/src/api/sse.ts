import type { Context } from "hono";
import type { AgentHost, HostEvent } from "../host.js";

/** Formats one server-sent event. */
export function sseFrame(event: { id?: number; event: string; data: unknown }): string {
  const lines = JSON.stringify(event.data)
    .split("\n")
    .map((l) => `data: ${l}`)
    .join("\n");
  return `${event.id !== undefined ? `id: ${event.id}\n` : ""}event: ${event.event}\n${lines}\n\n`;
}

/** The id to replay after: the `Last-Event-ID` header when it is a number, else `?after=`. */
export function lastEventId(c: Context, fromQuery: number | undefined): number | undefined {
  const header = c.req.header("last-event-id");
  if (header !== undefined && /^\d+$/.test(header.trim())) return Number(header.trim());
  return fromQuery;
}

/**
 * A session's event stream: a `session` snapshot (without `afterId`) or the stored events after `afterId`, then
 * live events (stored, so already redacted), keep-alive comments every `server.sseHeartbeatMs`; it ends when the
 * session closes, the host shuts down or the client goes away.
 */
export function eventStream(
  c: Context,
  host: AgentHost,
  sessionId: string,
  afterId: number | undefined,
): Response {
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
