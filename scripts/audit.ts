/**
 * `npm run audit -- <command>` reads the audit ledger `DATA_DIR/audit.db` (or `--data-dir`), after
 * moving into it what the journal of a gateway that stopped without closing still holds:
 *
 *   subject <ID>   the accesses to one person or organisation, oldest first, one JSON object a line
 *   verify         walks the hash chain: exit 0 when intact, 1 naming the first broken entry;
 *                  with `--expect <seq>:<hash>` (a head published earlier) also 1 unless that
 *                  entry is still there with that hash — the check no edit of the file can pass
 *   head           the last entry's number and hash, to publish (anchor) outside the file
 *
 * Exit 1 also while a damaged journal (`*.journal.damaged`) is kept in the directory, or when a
 * stopped gateway's journal could not be moved: the ledger is then not whole.
 */
import { existsSync, readdirSync } from "node:fs";
import { normalizePersonId, normalizeUscc } from "../common/ids.ts";
import { option } from "../common/serve.ts";
import { dataDir } from "../common/sqlite.ts";
import {
  auditDatabasePath,
  DAMAGED_SUFFIX,
  moveAbandonedJournals,
  openAuditDatabase,
  subjectEntries,
  verifyChain,
} from "../gateway/ledger/store.ts";

const USAGE =
  "usage: npm run audit -- subject <ID> | verify [--expect <seq>:<hash>] | head  [--data-dir DIR]";
const argv = process.argv.slice(2);
const dir = option(argv, "data-dir") ?? dataDir();
const expectOption = option(argv, "expect");
const [command, argument] = argv.filter(
  (arg, index) =>
    !arg.startsWith("--") && argv[index - 1] !== "--data-dir" && argv[index - 1] !== "--expect",
);
/** `<seq>:<hash>`, or the JSON `head` prints (`{"seq":…,"hash":"…"}`), as published. */
function readHead(text: string): RegExpExecArray | null {
  let written = text;
  if (text.startsWith("{")) {
    try {
      const { seq, hash } = JSON.parse(text) as { seq?: unknown; hash?: unknown };
      written = `${seq}:${hash}`;
    } catch {
      return null;
    }
  }
  return /^(\d+):([0-9a-f]{64})$/.exec(written);
}
const expected = expectOption === undefined ? null : readHead(expectOption.trim());
if (expectOption !== undefined && (!expected || command !== "verify")) {
  console.error(
    `audit: --expect takes <seq>:<64 hex digits> (or what head prints), with verify\n${USAGE}`,
  );
  process.exit(2);
}

if (!command || !["subject", "verify", "head"].includes(command)) {
  console.error(USAGE);
  process.exit(2);
}
if (!existsSync(auditDatabasePath(dir))) {
  console.error(`audit: no audit ledger at ${auditDatabasePath(dir)}`);
  process.exit(2);
}
const sqlite = openAuditDatabase(dir, {
  existing: true,
  migrated: ({ requests, contexts }) =>
    console.error(
      `audit: migrated audit.db from format 1 to 2: ${requests} requests, ${contexts} contexts stored once; every hash unchanged`,
    ),
});
try {
  // A gateway that stopped without closing left acknowledged accesses in its journal: move them
  // first, so that what is printed or verified includes every access ever acknowledged.
  const recovered = moveAbandonedJournals(sqlite, dir);
  if (recovered.entries > 0) {
    console.error(`audit: moved ${recovered.entries} entries from a stopped gateway's journal`);
  }
  for (const problem of recovered.problems) {
    console.error(`audit: an abandoned journal stopped early: ${problem}`);
  }
  for (const failure of recovered.failures) {
    console.error(`audit: a stopped gateway's journal could not be moved now: ${failure}`);
  }
  // Kept by this run or by a running gateway, which moves abandoned journals too: what such a
  // journal held past its break is not in audit.db, so the ledger is not whole while it is here.
  const damaged = readdirSync(dir).filter((name) => name.endsWith(`.journal${DAMAGED_SUFFIX}`));
  for (const name of damaged) {
    console.error(
      `audit: a damaged journal is kept: ${name} (what it holds past its break is not in audit.db)`,
    );
  }
  if (recovered.problems.length + recovered.failures.length + damaged.length > 0) {
    process.exitCode = 1;
  }
  if (command === "subject") {
    const subject = argument ? (normalizePersonId(argument) ?? normalizeUscc(argument)) : null;
    if (!subject) {
      console.error(`audit: "${argument ?? ""}" is neither an identity number nor a credit code`);
      process.exit(2);
    }
    const entries = subjectEntries(sqlite, subject, Number.MAX_SAFE_INTEGER).reverse();
    process.stdout.write(entries.map((entry) => `${JSON.stringify(entry)}\n`).join(""));
    console.error(`audit: ${entries.length} entries for ${subject}`);
  } else {
    const verdict = verifyChain(sqlite);
    if (!verdict.ok) {
      console.error(`audit: chain BROKEN at entry ${verdict.brokenAt}: ${verdict.reason}`);
      console.error(`audit: entries 1…${verdict.entries} verified before it`);
      process.exitCode = 1;
    } else if (command === "head") {
      console.log(JSON.stringify(verdict.head ?? { seq: 0, hash: null }));
    } else {
      const head = verdict.head ? `, head entry ${verdict.head.seq} ${verdict.head.hash}` : "";
      console.log(`audit: chain intact: ${verdict.entries} entries${head}`);
      if (expected) {
        // A head published outside the file: a ledger cut back before it and rebuilt (its own
        // head rows rewritten too) verifies as a chain, but not against this.
        const [, seq, hash] = expected;
        const found = sqlite
          .prepare("SELECT hash FROM entries WHERE seq = ?")
          .pluck()
          .get(Number(seq));
        if (found !== hash) {
          console.error(
            found === undefined
              ? `audit: the published entry ${seq} is not in the ledger: entries were removed`
              : `audit: entry ${seq} has hash ${found}, not the published ${hash}: the ledger was rewritten`,
          );
          process.exitCode = 1;
        } else {
          console.log(`audit: entry ${seq} has the published hash`);
        }
      }
    }
  }
} finally {
  sqlite.close();
}
