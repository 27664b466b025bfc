import { isRuntimeError } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import {
  assertModalCredentials,
  inspectModalCredentials,
  MODAL_CREDENTIALS_HELP,
  missingModalCredentialsError,
} from "../src/index.js";

const ID = "ak-AbCdEfGhIjKlMnOpQrStUv";
const SECRET = "as-ZyXwVuTsRqPoNmLkJiHgFe";

function problems(env: Record<string, string | undefined>): string[] {
  return inspectModalCredentials(env).problems.map((p) => `${p.variable} ${p.problem}`);
}

describe("Modal token checks", () => {
  it("accepts well-formed tokens", () => {
    expect(inspectModalCredentials({ MODAL_TOKEN_ID: ID, MODAL_TOKEN_SECRET: SECRET })).toEqual({
      ok: true,
      problems: [],
      localServer: false,
    });
    expect(() => assertModalCredentials({ MODAL_TOKEN_ID: ID, MODAL_TOKEN_SECRET: SECRET })).not.toThrow();
  });

  it("names each missing or malformed variable", () => {
    expect(problems({})).toEqual(["MODAL_TOKEN_ID is not set", "MODAL_TOKEN_SECRET is not set"]);
    expect(problems({ MODAL_TOKEN_ID: SECRET, MODAL_TOKEN_SECRET: ID })).toEqual([
      "MODAL_TOKEN_ID starts with as-, which is the shape of MODAL_TOKEN_SECRET: the two look swapped",
      "MODAL_TOKEN_SECRET starts with ak-, which is the shape of MODAL_TOKEN_ID: the two look swapped",
    ]);
    expect(problems({ MODAL_TOKEN_ID: `${ID}\n`, MODAL_TOKEN_SECRET: `"${SECRET}"` })).toEqual([
      "MODAL_TOKEN_ID has leading or trailing whitespace (a newline from a file?)",
      "MODAL_TOKEN_SECRET is wrapped in quotes; remove them",
    ]);
    expect(problems({ MODAL_TOKEN_ID: "token-id", MODAL_TOKEN_SECRET: "as-abc" })).toEqual([
      "MODAL_TOKEN_ID should start with ak-",
      "MODAL_TOKEN_SECRET should be as- followed by at least 8 letters and digits (truncated or mistyped?)",
    ]);
  });

  it("throws UNAUTHORIZED with a troubleshooting message and no values", () => {
    let err: unknown;
    try {
      assertModalCredentials({ MODAL_TOKEN_ID: ID, MODAL_TOKEN_SECRET: "as-short" });
    } catch (e) {
      err = e;
    }
    expect(isRuntimeError(err, "UNAUTHORIZED")).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain("MODAL_TOKEN_SECRET should be as-");
    expect(message).toContain(MODAL_CREDENTIALS_HELP);
    expect(message).toContain("modal token new");
    expect(message).not.toContain(ID);
    expect(message).not.toContain("as-short");
  });

  it("only checks presence against a loopback server (the emulator)", () => {
    const env = {
      MODAL_SERVER_URL: "http://127.0.0.1:50051",
      MODAL_TOKEN_ID: "dummy",
      MODAL_TOKEN_SECRET: "dummy",
    };
    expect(inspectModalCredentials(env)).toEqual({ ok: true, problems: [], localServer: true });
    expect(problems({ MODAL_SERVER_URL: "http://localhost:1", MODAL_TOKEN_ID: "x" })).toEqual([
      "MODAL_TOKEN_SECRET is not set",
    ]);
  });

  it("a half-set token names the missing variable, each way round", () => {
    const noSecret = missingModalCredentialsError({ tokenIdSet: true, tokenSecretSet: false });
    expect(noSecret.code).toBe("UNAUTHORIZED");
    expect(noSecret.message).toMatch(
      /^Modal credentials are incomplete: MODAL_TOKEN_SECRET is missing \(MODAL_TOKEN_ID is set\)\. Set MODAL_TOKEN_SECRET too/,
    );
    expect(noSecret.details).toEqual({ missing: ["MODAL_TOKEN_SECRET"] });
    const noId = missingModalCredentialsError({ tokenIdSet: false, tokenSecretSet: true, profile: "work" });
    expect(noId.message).toMatch(
      /^Modal credentials are incomplete: MODAL_TOKEN_ID is missing \(MODAL_TOKEN_SECRET is set\)\. Set MODAL_TOKEN_ID too \(or token_id and token_secret in the profile "work"\)/,
    );
    expect(noId.details).toEqual({ missing: ["MODAL_TOKEN_ID"] });
    const none = missingModalCredentialsError({ tokenIdSet: false, tokenSecretSet: false });
    expect(none.message).toMatch(/^No Modal credentials found: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET/);
    expect(none.message).toContain(MODAL_CREDENTIALS_HELP);
    expect(none.details).toEqual({ missing: ["MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"] });
  });
});
