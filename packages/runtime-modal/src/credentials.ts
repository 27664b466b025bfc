/**
 * Modal token checks: presence and shape of `MODAL_TOKEN_ID` / `MODAL_TOKEN_SECRET`, and the UNAUTHORIZED errors
 * that name what is missing and what to do. Values never appear in reports or messages.
 */
import { RuntimeError } from "@agent-runtime/runtime-core";

/** One problem found with the Modal token variables (names and shapes, never values). */
export interface ModalCredentialProblem {
  /** `MODAL_TOKEN_ID` or `MODAL_TOKEN_SECRET`. */
  variable: "MODAL_TOKEN_ID" | "MODAL_TOKEN_SECRET";
  /** What is wrong, e.g. "is not set" or "should start with ak-". */
  problem: string;
}

/** The result of {@link inspectModalCredentials}. */
export interface ModalCredentialReport {
  /** True when both variables are present and well-formed. */
  ok: boolean;
  /** Every problem found. */
  problems: ModalCredentialProblem[];
  /** True when `MODAL_SERVER_URL` is a loopback address (the emulator), where any non-empty token passes. */
  localServer: boolean;
}

const SHAPES = {
  MODAL_TOKEN_ID: { prefix: "ak-", other: "as-", otherVar: "MODAL_TOKEN_SECRET" },
  MODAL_TOKEN_SECRET: { prefix: "as-", other: "ak-", otherVar: "MODAL_TOKEN_ID" },
} as const;

/** What to do when Modal credentials are wrong; part of the error message. */
export const MODAL_CREDENTIALS_HELP =
  "Create a token with `modal token new` (or at https://modal.com/settings/tokens) and set " +
  "MODAL_TOKEN_ID=ak-... and MODAL_TOKEN_SECRET=as-... in the host's environment (no quotes, no spaces). " +
  "If a token was revoked, create a new one; if you use several workspaces, check the token belongs to the " +
  "one that owns your apps and secrets.";

/**
 * Checks `MODAL_TOKEN_ID` / `MODAL_TOKEN_SECRET` for presence and shape (Modal token ids start with `ak-`,
 * secrets with `as-`; no whitespace or quotes). Against a loopback `MODAL_SERVER_URL` (the emulator) only
 * presence is checked. Never includes values in the report.
 */
export function inspectModalCredentials(
  env: Readonly<Record<string, string | undefined>> = process.env,
): ModalCredentialReport {
  const localServer = isLocalServerUrl(env["MODAL_SERVER_URL"]);
  const problems: ModalCredentialProblem[] = [];
  for (const variable of ["MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"] as const) {
    const value = env[variable];
    const shape = SHAPES[variable];
    if (value === undefined || value === "") {
      problems.push({ variable, problem: "is not set" });
    } else if (localServer) {
      // The emulator accepts any token; only presence matters.
    } else if (value !== value.trim()) {
      problems.push({ variable, problem: "has leading or trailing whitespace (a newline from a file?)" });
    } else if (/^["']|["']$/.test(value)) {
      problems.push({ variable, problem: "is wrapped in quotes; remove them" });
    } else if (value.startsWith(shape.other)) {
      problems.push({
        variable,
        problem: `starts with ${shape.other}, which is the shape of ${shape.otherVar}: the two look swapped`,
      });
    } else if (!value.startsWith(shape.prefix)) {
      problems.push({ variable, problem: `should start with ${shape.prefix}` });
    } else if (!/^[A-Za-z0-9]{8,}$/.test(value.slice(shape.prefix.length))) {
      problems.push({
        variable,
        problem: `should be ${shape.prefix} followed by at least 8 letters and digits (truncated or mistyped?)`,
      });
    }
  }
  return { ok: problems.length === 0, problems, localServer };
}

/**
 * Throws UNAUTHORIZED with every problem and a troubleshooting message when the Modal token variables are
 * missing or malformed (see {@link inspectModalCredentials}). The provider calls it before creating a client.
 *
 * @example
 * ```ts
 * assertModalCredentials(process.env); // throws: "MODAL_TOKEN_SECRET is not set. Create a token with ..."
 * ```
 */
export function assertModalCredentials(
  env: Readonly<Record<string, string | undefined>> = process.env,
): void {
  const report = inspectModalCredentials(env);
  if (report.ok) return;
  const lines = report.problems.map((p) => `${p.variable} ${p.problem}`);
  throw new RuntimeError(
    "UNAUTHORIZED",
    `Modal credentials are not usable: ${lines.join("; ")}. ${MODAL_CREDENTIALS_HELP}`,
    {
      details: { problems: report.problems },
    },
  );
}

/** What {@link missingModalCredentialsError} is told: which half of the token the lookup found. */
export interface MissingModalCredentials {
  /** A token id was found (`MODAL_TOKEN_ID`, or `token_id` in the profile). */
  tokenIdSet: boolean;
  /** A token secret was found (`MODAL_TOKEN_SECRET`, or `token_secret` in the profile). */
  tokenSecretSet: boolean;
  /** The `~/.modal.toml` profile that was asked for, if any. */
  profile?: string;
}

/**
 * The UNAUTHORIZED error for a Modal token that the SDK's lookup (environment, then `~/.modal.toml`) did not
 * find, or found only half of: it names the missing variable (`MODAL_TOKEN_SECRET is missing` when only
 * `MODAL_TOKEN_ID` is set, and vice versa). `details.missing` lists the missing variables. Never holds values.
 *
 * @example
 * ```ts
 * throw missingModalCredentialsError({ tokenIdSet: true, tokenSecretSet: false });
 * // "Modal credentials are incomplete: MODAL_TOKEN_SECRET is missing (MODAL_TOKEN_ID is set). ..."
 * ```
 */
export function missingModalCredentialsError(found: MissingModalCredentials): RuntimeError {
  const inProfile = found.profile ? ` (or token_id and token_secret in the profile "${found.profile}")` : "";
  const missing = [
    ...(found.tokenIdSet ? [] : (["MODAL_TOKEN_ID"] as const)),
    ...(found.tokenSecretSet ? [] : (["MODAL_TOKEN_SECRET"] as const)),
  ];
  if (missing.length === 1) {
    const [absent, present] = found.tokenIdSet
      ? (["MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID"] as const)
      : (["MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"] as const);
    return new RuntimeError(
      "UNAUTHORIZED",
      `Modal credentials are incomplete: ${absent} is missing (${present} is set). Set ${absent} too${inProfile}: a token is an id and a secret, both from the same \`modal token new\`. ${MODAL_CREDENTIALS_HELP}`,
      { details: { missing } },
    );
  }
  return new RuntimeError(
    "UNAUTHORIZED",
    `No Modal credentials found: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, pass the runtime's credentials option, or configure a profile in ~/.modal.toml${found.profile ? ` (the profile "${found.profile}" has no token)` : ""}. ${MODAL_CREDENTIALS_HELP}`,
    { details: { missing } },
  );
}

/** True for a loopback server URL: modal-emulator (Modal itself is never on loopback). */
export function isLocalServerUrl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    const host = new URL(url).hostname;
    return host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);
  } catch {
    return false;
  }
}
