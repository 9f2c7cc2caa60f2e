/**
 * A gateway whose audit ledger has failed discloses nothing: its writer thread dies (as on a
 * crash of the thread), and from then on every query is answered 503 `AUDIT_UNAVAILABLE` without
 * data, readiness says so, and closing still ends. What was acknowledged before the failure is
 * in the journal and reaches audit.db when the ledger is next opened.
 */
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLedger } from "../../gateway/ledger/ledger.ts";
import {
  auditDatabasePath,
  openAuditDatabase,
  subjectEntries,
  verifyChain,
} from "../../gateway/ledger/store.ts";
import { LI_NA, writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { LOTTERY_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
let closed = false;
/** Holds audit.db's write lock for the test; released in afterAll if an assertion stopped it. */
let holder: Database.Database | undefined;

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  // The writer gives up on audit.db's lock at once and tries again on its next tick, instead of
  // waiting inside SQLite: a worker terminated in the middle of a native call can take the
  // whole process down with it (vitest's worker crashed about one run in six).
  platform = await startPlatform(data.dir, { config: { security: { auditBusyTimeoutMs: 0 } } });
});

afterAll(async () => {
  if (holder?.open) holder.close();
  await tearDown(closed ? undefined : platform, data.remove);
});

/** Ends the ledger's writer thread from outside, as a crash of that thread would. */
async function killWriter(ledger: AuditLedger): Promise<void> {
  // biome-ignore lint/complexity/useLiteralKeys: the writer is private; only a test kills it
  const worker = ledger["worker"] as Worker;
  await worker.terminate();
  // Its 'exit' event reaches the ledger on a later turn of the event loop.
  while (ledger.available) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("a gateway whose ledger writer has died", () => {
  it("withholds every answer with AUDIT_UNAVAILABLE, is not ready, and keeps what it acknowledged", async () => {
    // Another connection holds audit.db's write lock, so the access acknowledged next stays in
    // the journal only (the writer cannot move it) until after the writer has died.
    holder = new Database(auditDatabasePath(data.dir));
    holder.exec("BEGIN IMMEDIATE");
    const before = await platform.query(
      `query BeforeTheFailure { person(id: "${ZHANG_WEI}") { alive } }`,
      {},
      LOTTERY_DESK,
    );
    expect(before.status).toBe(200);
    expect(before.body.data).toEqual({ person: { alive: true } });

    const ledger = platform.gateway.ledger as AuditLedger;
    expect(ledger).toBeInstanceOf(AuditLedger);
    await killWriter(ledger);

    const after = await platform.query(
      `query AfterTheFailure { person(id: "${LI_NA}") { alive } }`,
      {},
      LOTTERY_DESK,
    );
    expect(after.status).toBe(503);
    expect(after.body.data).toBeUndefined();
    expect(after.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringContaining("nothing was disclosed"),
        extensions: { code: "AUDIT_UNAVAILABLE" },
      }),
    ]);
    expect(JSON.stringify(after.body)).not.toMatch(/at .*\.ts:\d+/); // no stack trace

    const ready = await platform.gateway.inject({ method: "GET", url: "/ready" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: "not ready", audit: "unavailable" });

    // Closing ends although the writer cannot answer its "close".
    await platform.close();
    closed = true;
    holder.exec("COMMIT");
    holder.close();

    // The next ledger on the directory moves the journal the failed one left.
    const next = await AuditLedger.open(data.dir, "full");
    try {
      expect(next.recovered.entries).toBe(1);
      expect(next.recovered.problems).toEqual([]);
    } finally {
      await next.close();
    }
    const sqlite = openAuditDatabase(data.dir, { existing: true });
    try {
      expect(verifyChain(sqlite)).toMatchObject({ ok: true });
      expect(subjectEntries(sqlite, ZHANG_WEI).map((entry) => entry.operationName)).toEqual([
        "BeforeTheFailure",
      ]);
      expect(subjectEntries(sqlite, LI_NA)).toEqual([]);
    } finally {
      sqlite.close();
    }
  });
});
