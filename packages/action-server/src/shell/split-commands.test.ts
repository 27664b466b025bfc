import { describe, expect, it } from "vitest";
import { splitBashCommands } from "./split-commands.js";

describe("splitBashCommands", () => {
  it.each([
    ["echo a\necho b", ["echo a", "echo b"]],
    ["echo a; echo b", ["echo a; echo b"]],
    ["echo a &&\necho b", ["echo a &&\necho b"]],
    ["ls |\n grep x", ["ls |\n grep x"]],
    ["sleep 1 &\necho b", ["sleep 1 &", "echo b"]],
    ["cat <<EOF\nhi\necho x\nEOF", ["cat <<EOF\nhi\necho x\nEOF"]],
    ["cat <<'EOF' > f\n$x\nEOF\necho after", ["cat <<'EOF' > f\n$x\nEOF", "echo after"]],
    ["cat <<-EOF\n\thi\n\tEOF\necho z", ["cat <<-EOF\n\thi\n\tEOF", "echo z"]],
    ["if true; then\n echo a\nfi", ["if true; then\n echo a\nfi"]],
    ["for i in 1 2; do\n echo $i\ndone", ["for i in 1 2; do\n echo $i\ndone"]],
    ["while true; do\n sleep 1\ndone", ["while true; do\n sleep 1\ndone"]],
    ["case $x in\n a) echo a;;\n b) echo b;;\nesac", ["case $x in\n a) echo a;;\n b) echo b;;\nesac"]],
    ["f() {\n echo a\n}", ["f() {\n echo a\n}"]],
    ["f () {\n echo a\n}", ["f () {\n echo a\n}"]],
    ["function g {\n echo\n}", ["function g {\n echo\n}"]],
    ["{ echo a\necho b; }", ["{ echo a\necho b; }"]],
    ["(cd /tmp\nls)", ["(cd /tmp\nls)"]],
    ['echo "a\nb"', ['echo "a\nb"']],
    ["echo 'a\nb'", ["echo 'a\nb'"]],
    ["echo $'a\\nb'\necho c", ["echo $'a\\nb'", "echo c"]],
    ["echo $(echo a\necho b)", ["echo $(echo a\necho b)"]],
    ["echo `echo a\necho b`", ["echo `echo a\necho b`"]],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion under test
    ["echo ${x:-a\nb}", ["echo ${x:-a\nb}"]],
    ["x=$(cat <<EOF\nhi\nEOF\n)\necho $x", ["x=$(cat <<EOF\nhi\nEOF\n)", "echo $x"]],
    ["echo $((1+2))\necho b", ["echo $((1+2))", "echo b"]],
    ["echo done\necho fi", ["echo done", "echo fi"]],
    ["echo a \\\n b", ["echo a \\\n b"]],
    ["# comment\necho a", ["echo a"]],
    ["echo a # trailing\n\n", ["echo a # trailing"]],
    ["python3 -c 'print(1)\nprint(2)'", ["python3 -c 'print(1)\nprint(2)'"]],
    ["", []],
    [" \n\t\n", []],
  ])("%j", (input, expected) => {
    expect(splitBashCommands(input)).toEqual(expected);
  });

  it("treats input it cannot follow (an unterminated quote) as one command", () => {
    expect(splitBashCommands("echo 'open\necho b")).toEqual(["echo 'open\necho b"]);
    expect(splitBashCommands("cat <<EOF\nno end")).toEqual(["cat <<EOF\nno end"]);
  });
});
