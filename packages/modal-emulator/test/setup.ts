import { tmpdir } from "node:os";
import { join } from "node:path";

// The SDK reads ~/.modal.toml (or MODAL_CONFIG_PATH) when it is first imported, and MODAL_* variables when a
// client is constructed: point it at a file that does not exist and drop every MODAL_* variable.
for (const key of Object.keys(process.env)) if (key.startsWith("MODAL_")) delete process.env[key];
process.env["MODAL_CONFIG_PATH"] = join(tmpdir(), "modal-emulator-tests-no-such-config.toml");
process.env["MODAL_LOGLEVEL"] = "error";
