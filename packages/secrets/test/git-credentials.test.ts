import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GIT_HELPER_PATH, gitCredentialFiles, sandboxFilePaths, secretsResolver } from "../src/index.js";
import { runProcess } from "./helpers/run-process.js";

const root = mkdtempSync(join(tmpdir(), "secrets-git-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const TOKEN = "ghp_GitTokenForTests0123456789abcdef";

/** Writes `files` under a fresh home the way a runtime must: file API, parents created, then mode. */
function materialize(files: Parameters<typeof sandboxFilePaths>[0]): string {
  const home = mkdtempSync(join(root, "home-"));
  for (const file of sandboxFilePaths(files, home)) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.content);
    chmodSync(file.path, file.mode);
  }
  return home;
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  input = "",
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // git config and git ls-remote never read stdin: runProcess handles the EPIPE when they exit first.
  return runProcess(cmd, args, { env, input });
}

function gitEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_NOSYSTEM: "1",
    SHLVL: "1",
    ...extra,
  };
}

describe("git credentials", () => {
  it("emits files only when a provider token is present, none of them holding the token", async () => {
    expect(gitCredentialFiles(["OTHER"])).toBeUndefined();
    const set = await secretsResolver({
      providers: [
        { type: "memory", values: { GITHUB_TOKEN: TOKEN, GITLAB_TOKEN: "glpat-abcdefghijklmnop" } },
      ],
      git: { userName: "Agent", userEmail: "agent@example.com" },
    }).resolve();
    expect(Object.keys(set.files ?? {}).sort()).toEqual([
      "~/.config/agent-runtime/git-credential-helper",
      "~/.config/agent-runtime/git-credentials.gitconfig",
      "~/.gitconfig",
    ]);
    for (const file of Object.values(set.files ?? {})) {
      expect(file.content).not.toContain(TOKEN);
      expect(file.content).not.toContain("glpat-");
    }
    expect(set.files?.[GIT_HELPER_PATH]?.mode).toBe(0o700);
    const disabled = await secretsResolver({
      providers: [{ type: "memory", values: { GITHUB_TOKEN: TOKEN } }],
      git: { enabled: false },
    }).resolve();
    expect(disabled.files).toBeUndefined();
  });

  it("lets real git fill credentials for github.com from the environment", async () => {
    const files = gitCredentialFiles(["GITHUB_TOKEN", "BITBUCKET_TOKEN"], { userName: "Agent Smith" })!;
    const home = materialize(files);
    const env = gitEnv(home, { GITHUB_TOKEN: TOKEN, BITBUCKET_TOKEN: "bb-token-value-123" });
    const gh = await run("git", ["credential", "fill"], env, "protocol=https\nhost=github.com\n\n");
    expect(gh.stderr).toBe("");
    expect(gh.stdout).toContain("username=x-access-token\n");
    expect(gh.stdout).toContain(`password=${TOKEN}\n`);
    const bb = await run("git", ["credential", "fill"], env, "protocol=https\nhost=bitbucket.org\n\n");
    expect(bb.stdout).toContain("username=x-token-auth\npassword=bb-token-value-123\n");
    // No token for another host: git finds nothing (and, with prompts off, fails).
    const other = await run("git", ["credential", "fill"], env, "protocol=https\nhost=example.org\n\n");
    expect(other.code).not.toBe(0);
    expect(other.stdout).not.toContain(TOKEN);
    const name = await run("git", ["config", "--global", "user.name"], env);
    expect(name.stdout.trim()).toBe("Agent Smith");
  });

  it("authenticates a real git fetch over HTTP without the token in the command line", async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization ?? "");
      if (!req.headers.authorization) {
        res.writeHead(401, { "WWW-Authenticate": 'Basic realm="test"' }).end();
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const files = gitCredentialFiles(["GITHUB_TOKEN"], { hosts: { GITHUB_TOKEN: [url] } })!;
      const home = materialize(files);
      const args = ["ls-remote", `${url}/org/repo.git`];
      const result = await run("git", args, gitEnv(home, { GITHUB_TOKEN: TOKEN }));
      expect(args.join(" ")).not.toContain(TOKEN);
      expect(result.stderr).not.toContain(TOKEN);
      const sent = seen.find((h) => h.startsWith("Basic "));
      expect(sent, `git sent: ${JSON.stringify(seen)} stderr: ${result.stderr}`).toBeDefined();
      expect(Buffer.from(sent!.slice(6), "base64").toString()).toBe(`x-access-token:${TOKEN}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("resolves ~/ paths against the sandbox home", () => {
    const paths = sandboxFilePaths(
      { "~/a/b": { content: "x", mode: 0o600 }, "/etc/abs": { content: "y", mode: 0o644 } },
      "/root",
    );
    expect(paths.map((p) => p.path)).toEqual(["/etc/abs", "/root/a/b"]);
  });
});
