/**
 * Holds a ledger's SQLite write lock from another process: `node --import tsx lock-holder.ts <db> <holdMs>
 * <immediate|exclusive> <driver>`. Prints `locked` once the lock is taken and `released` after COMMIT.
 */
import { writeSync } from "node:fs";
import { open, type SqliteDriverName } from "@agent-runtime/sqlite";

const [path, holdMs, mode, driver] = process.argv.slice(2) as [string, string, string, SqliteDriverName];
const db = open(path, { driver });
db.exec(mode === "exclusive" ? "BEGIN EXCLUSIVE" : "BEGIN IMMEDIATE");
// A write inside the transaction, as a real writer would make.
db.prepare(
  "INSERT INTO meta (key, value) VALUES ('lock-holder', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
).run(String(process.pid));
writeSync(1, "locked\n");
setTimeout(() => {
  db.exec("COMMIT");
  db.close();
  writeSync(1, "released\n");
}, Number(holdMs));
