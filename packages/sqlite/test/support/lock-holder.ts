/**
 * Holds a database's write lock from another process: `node --import tsx lock-holder.ts <db> <driver>`.
 * Writes a row inside `BEGIN IMMEDIATE`, prints `locked`, and commits and exits when stdin gets a line.
 */
import { writeSync } from "node:fs";
import { open, type SqliteDriverName } from "../../src/index.js";

const [path, driver] = process.argv.slice(2) as [string, SqliteDriverName];
const db = open(path, { driver });
db.exec("BEGIN IMMEDIATE");
db.prepare("INSERT INTO t (v) VALUES (?)").run(`from ${db.driver}`);
writeSync(1, "locked\n");
process.stdin.once("data", () => {
  db.exec("COMMIT");
  db.close();
  process.exit(0);
});
