import { spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Json, readySession, runCommand, startTestServer, type TestServer, tempDir } from "./helpers.js";

const TOKEN = "ghp_GitHttpTestToken0123456789abcdefXYZ";
const USER = "x-access-token";
const dir = tempDir("agent-host-git-");

function git(args: string[], cwd?: string): string {
  const res = spawnSync("git", args, {
    cwd,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir.path, GIT_CONFIG_NOSYSTEM: "1" },
  });
  if (res.status !== 0) throw new Error(`git ${args.join(" ")} failed: ${res.stderr}`);
  return res.stdout.trim();
}

/** A bare repository with one commit on `main`; returns the commit id. */
function makeRepo(root: string): string {
  const work = join(root, "work");
  mkdirSync(work, { recursive: true });
  git(["init", "-q", "-b", "main", work]);
  git(
    ["-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "one"],
    work,
  );
  git(["clone", "-q", "--bare", work, join(root, "repos", "repo.git")]);
  return git(["rev-parse", "HEAD"], work);
}

/**
 * Smart HTTP through `git http-backend` (CGI), behind basic auth that accepts only `USER:TOKEN`. Every
 * Authorization header received is recorded.
 */
function gitHttpServer(projectRoot: string, seen: string[]): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const auth = req.headers.authorization ?? "";
    seen.push(auth);
    const expected = `Basic ${Buffer.from(`${USER}:${TOKEN}`).toString("base64")}`;
    if (auth !== expected) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' }).end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        GIT_CONFIG_NOSYSTEM: "1",
        HOME: dir.path,
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: USER,
        REMOTE_ADDR: "127.0.0.1",
        ...(req.headers["git-protocol"] ? { HTTP_GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    cgi.stdin.on("error", () => {});
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersSent = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersSent) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString().split("\r\n")) {
        const i = line.indexOf(":");
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      headersSent = true;
      res.write(head.subarray(end + 4));
    });
    cgi.on("close", () => {
      if (!headersSent) res.writeHead(500);
      res.end();
    });
  });
}

describe("a git provider token among the secrets", () => {
  let server: Server;
  let host: TestServer;
  let url: string;
  let commit: string;
  const seen: string[] = [];

  beforeAll(async () => {
    commit = makeRepo(dir.path);
    server = gitHttpServer(join(dir.path, "repos"), seen);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    host = await startTestServer({
      // bubblewrap gives the sandbox its own network namespace: it cannot reach this host's 127.0.0.1.
      runtime: { options: { isolation: "none" } },
      secrets: {
        enabled: true,
        options: {
          providers: [{ type: "memory", values: { GITHUB_TOKEN: TOKEN } }],
          git: { hosts: { GITHUB_TOKEN: [url] } },
        },
      },
      cost: { enabled: false },
    });
  }, 60_000);

  afterAll(async () => {
    await host?.stop();
    await new Promise((resolve) => server?.close(resolve));
    dir.cleanup();
  });

  it("authenticates `git ls-remote` against a git HTTP server on 127.0.0.1 (isolation none: a bubblewrap sandbox cannot reach the host's loopback) and the token appears in no observation", async () => {
    const sessionId = await readySession(host);
    const listed: Json = await runCommand(host, sessionId, `git ls-remote ${url}/repo.git`);
    expect(listed.status, JSON.stringify(listed)).toBe("completed");
    const obs = listed.observation;
    expect(obs.extras.metadata.exit_code, obs.content).toBe(0);
    // A terminal shows the tab git prints as spaces (as tmux's capture does).
    expect(obs.content).toMatch(new RegExp(`${commit}\\s+refs/heads/main`));
    // git asked without credentials first, then sent the token it got from the helper.
    expect(seen).toContain(`Basic ${Buffer.from(`${USER}:${TOKEN}`).toString("base64")}`);

    // The token is in the sandbox's environment, and nowhere an agent or a log can see it.
    const env: Json = await runCommand(
      host,
      sessionId,
      "echo token=$GITHUB_TOKEN; cat ~/.gitconfig ~/.config/agent-runtime/*",
    );
    expect(env.observation.content).toContain("token=[redacted]");
    const tasks = await host.request("GET", `/v1/sessions/${sessionId}/tasks`);
    const session = await host.request("GET", `/v1/sessions/${sessionId}`);
    const everything = JSON.stringify({ listed, env, tasks: tasks.body, session: session.body });
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(Buffer.from(TOKEN).toString("base64"));
  }, 60_000);
});
