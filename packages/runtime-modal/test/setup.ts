import { tmpdir } from "node:os";
import { join } from "node:path";

// Real Modal credentials, when the developer or CI has them, are kept aside for the real-Modal suite; every
// other MODAL_* variable is dropped and the SDK is pointed at a config file that does not exist.
const realId = process.env.MODAL_TOKEN_ID;
const realSecret = process.env.MODAL_TOKEN_SECRET;
for (const key of Object.keys(process.env)) if (key.startsWith("MODAL_")) delete process.env[key];
if (realId && realSecret) {
  process.env.AR_TEST_REAL_MODAL_TOKEN_ID = realId;
  process.env.AR_TEST_REAL_MODAL_TOKEN_SECRET = realSecret;
}
process.env.MODAL_CONFIG_PATH = join(tmpdir(), "runtime-modal-tests-no-such-config.toml");
process.env.MODAL_LOGLEVEL = "error";
