import { expect, test } from "vitest";
import { main } from "../src/cli.js";
import { capture } from "./helpers.js";

test("demo --emulator: the same demo on the modal runtime, through the real modal SDK, against modal-emulator", async () => {
  const out = capture();
  const err = capture();
  const code = await main(["demo", "--emulator"], {
    stdout: out.stream,
    stderr: err.stream,
    env: process.env,
  });
  expect(code, `${out.text()}\n${err.text()}`).toBe(0);
  expect(out.text()).toMatch(/modal-emulator: offline Modal on http:\/\/127\.0\.0\.1:\d+/);
  expect(out.text()).toContain("agent-host demo: a sandbox on the modal runtime");
  expect(out.text()).toMatch(/tests 3, pass 2, fail 1 \(exit code 1\)/);
  expect(out.text()).toMatch(/tests 3, pass 3, fail 0 \(exit code 0\)/);
  // Modal prices apply: a sandbox that ran for a second or two costs a small, non-zero amount.
  expect(out.text()).toMatch(/Cost: \$0\.0\d*[1-9]\d* for this sandbox, from cost-guard\./);
}, 120_000);

test("--emulator needs the modal runtime", async () => {
  const err = capture();
  expect(
    await main(["demo", "--emulator", "--runtime", "local"], {
      stdout: capture().stream,
      stderr: err.stream,
      env: {},
    }),
  ).toBe(2);
  expect(err.text()).toContain("--emulator emulates Modal");
});
