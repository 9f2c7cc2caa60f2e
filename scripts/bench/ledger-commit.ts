/**
 * What the ledger's writer thread spends to put records into `audit.db`, measured alone:
 * `npm run bench:ledger [-- --rounds N]`. Appends records shaped like the bench's two scenarios
 * through `recordAppender`, in transactions of the size the writer's 100 ms moves make of them
 * (interactive: 240 records of one subject, the README's query at ≈ 2,400 requests/s; batch: 4
 * records of 1,000 subjects), into a new `audit.db` with `synchronous = FULL`, and prints wall
 * and CPU time per record and per subject, round by round (the first round includes warming up).
 * The figures are the writer's share of security's cost; they are not compared with a target.
 *
 * Then the event loop's share, `event loop` rows: interactive records (one subject, the README's
 * query) through `AuditLedger.append` in waves of 20, as a department's batch answer completes
 * them, with `AUDIT_SYNC=normal` so that no flush is timed: the appends themselves (the record's
 * compact form), and each wave from its first append until every record is written to the
 * journal and acknowledged.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AuditLedger } from "../../gateway/ledger/ledger.ts";
import { openAuditDatabase, recordAppender } from "../../gateway/ledger/store.ts";
import type { WireRecord } from "../../gateway/ledger/wire.ts";
import type { Principal } from "../../gateway/principal.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const rounds = Number(values.rounds);

/** A lottery desk's context: the departments and facts of the README's interactive query. */
const FIELDS = Array.from({ length: 40 }, (_, index) => `Person.fact${index}`);
const SELECTIONS = [{ fields: FIELDS, denied: [] }];
const DEPARTMENTS = ["civil", "hukou", "market", "social", "tax", "traffic"];

function identity(index: number): string {
  return `1101051949${String(index % 100_000_000).padStart(8, "0")}`;
}

function record(index: number, subjects: number): WireRecord {
  return {
    at: new Date(Date.UTC(2026, 11, 5) + index).toISOString(),
    requestId: `bench-${index.toString(36)}-0123456789abcdef`,
    deskId: "dev-lottery",
    deskName: "小客车指标调控管理办公室",
    purpose: "car-quota-lottery",
    legalBasis: "北京市小客车数量调控暂行规定 第十条",
    caseId: null,
    operationName: "PersonFacts",
    operationHash: "ab".repeat(32),
    departments: DEPARTMENTS,
    selections: SELECTIONS,
    subjects: Array.from({ length: subjects }, (_, k) => identity(index * subjects + k)).join("\n"),
    picks: new Uint16Array(subjects),
    outcomes: "a".repeat(subjects),
  };
}

const SHAPES = [
  { name: "interactive", subjects: 1, perTransaction: 240, records: 72_000 },
  { name: "batch", subjects: 1_000, perTransaction: 4, records: 400 },
] as const;

for (const shape of SHAPES) {
  const dir = mkdtempSync(join(tmpdir(), "mianzheng-ledger-bench-"));
  const sqlite = openAuditDatabase(dir, { sync: "full" });
  try {
    const append = recordAppender(sqlite);
    let next = 0;
    for (let round = 1; round <= rounds; round++) {
      const transactions = shape.records / shape.perTransaction;
      // Built before timing: the writer receives records already decoded from the journal.
      const batches = Array.from({ length: transactions }, () =>
        Array.from({ length: shape.perTransaction }, () => record(next++, shape.subjects)),
      );
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      for (const [index, records] of batches.entries()) {
        append(records, ["bench", String(index)]);
      }
      const wallUs = Number(process.hrtime.bigint() - started) / 1e3;
      const used = process.cpuUsage(cpu);
      const cpuUs = used.user + used.system;
      const subjects = shape.records * shape.subjects;
      console.log(
        `${shape.name.padEnd(11)} round ${round}: ${(wallUs / shape.records).toFixed(2)} µs wall, ${(cpuUs / shape.records).toFixed(2)} µs CPU a record; ${(wallUs / subjects).toFixed(2)} µs wall, ${(cpuUs / subjects).toFixed(2)} µs CPU a subject`,
      );
    }
  } finally {
    sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The records of interactive requests as the security pipeline hands them to the ledger. */
const DESK: Principal = {
  kind: "desk",
  deskId: "dev-lottery",
  deskName: "小客车指标调控管理办公室",
  purpose: "car-quota-lottery",
  legalBasis: "北京市小客车数量调控暂行规定 第十条",
  caseId: null,
  scopes: new Set(["*"]),
  citizenId: null,
};
const WAVE = 20;
const WAVES = 2_000;
{
  const dir = mkdtempSync(join(tmpdir(), "mianzheng-ledger-bench-"));
  const ledger = await AuditLedger.open(dir, "normal");
  try {
    let next = 0;
    for (let round = 1; round <= rounds; round++) {
      let appendNs = 0n;
      let waveNs = 0n;
      for (let wave = 0; wave < WAVES; wave++) {
        const started = process.hrtime.bigint();
        const acknowledged: Promise<void>[] = [];
        for (let k = 0; k < WAVE; k++) {
          const index = next++;
          acknowledged.push(
            ledger.append({
              principal: DESK,
              requestId: `bench-${index.toString(36)}-0123456789abcdef`,
              operationName: "PersonFacts",
              operationHash: "ab".repeat(32),
              // A request's departments arrive as the set of those that answered it.
              departments: new Set(DEPARTMENTS),
              subjects: [
                { subject: identity(index), fields: FIELDS, denied: [], outcome: "answered" },
              ],
            }),
          );
        }
        appendNs += process.hrtime.bigint() - started;
        await Promise.all(acknowledged);
        waveNs += process.hrtime.bigint() - started;
      }
      const records = WAVE * WAVES;
      console.log(
        `event loop  round ${round}: ${(Number(appendNs) / 1e3 / records).toFixed(2)} µs a record to append, ${(Number(waveNs) / 1e3 / records).toFixed(2)} µs a record until its wave is written and acknowledged`,
      );
    }
  } finally {
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
