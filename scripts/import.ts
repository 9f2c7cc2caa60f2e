/**
 * `npm run import -- <department> <file> [--accept-valid --rejects <file>]`: imports a department's
 * export (NDJSON, or CSV when the file ends in `.csv`) into `DATA_DIR` (default `./data`).
 *
 * Exit codes: 0 imported, 1 nothing imported because of bad lines (or another failure),
 * 2 wrong usage (unknown department, missing file, bad options).
 */
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { DEPARTMENTS, isDepartment } from "../common/departments.ts";
import { IngestError, type IngestSummary, ingestFile } from "../common/ingest.ts";
import { dataDir } from "../common/sqlite.ts";

const USAGE = `usage: npm run import -- <department> <file> [--accept-valid --rejects <file>]
  department   one of ${DEPARTMENTS.join(", ")}
  file         the department's export: NDJSON, or CSV with a header row when it ends in .csv
  --accept-valid  import the valid lines even when some are bad (needs --rejects)
  --rejects F     write every bad line, with its line number and reason, to F (NDJSON)
environment: DATA_DIR (default ./data)`;

/** Files smaller than this import too fast for a progress bar to help. */
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;
const REASONS_SHOWN = 10;

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        "accept-valid": { type: "boolean", default: false },
        rejects: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
}

function describeKinds(byKind: Record<string, number>): string {
  return Object.entries(byKind)
    .map(([kind, count]) => `${kind}: ${count}`)
    .join(", ");
}

function printProblems(summary: IngestSummary): void {
  for (const problem of summary.problems.slice(0, REASONS_SHOWN)) {
    console.error(`  line ${problem.line}: ${problem.reason}`);
  }
  const more = summary.rejected - Math.min(summary.problems.length, REASONS_SHOWN);
  if (more > 0) console.error(`  … and ${more} more`);
}

const { values, positionals } = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const [department, file, ...extra] = positionals;
if (department === undefined || file === undefined) usageError("missing department or file");
if (extra.length > 0) usageError(`unexpected arguments: ${extra.join(" ")}`);
if (!isDepartment(department)) usageError(`unknown department "${department}"`);
if (values["accept-valid"] && values.rejects === undefined) {
  usageError("--accept-valid needs --rejects <file>, so that no bad line goes unrecorded");
}

const bar =
  process.stderr.isTTY === true
    ? new cliProgress.SingleBar(
        {
          format: `importing ${file} {bar} {percentage}% | {mb} of {totalMb} MB | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
let barStarted = false;
function stopBar(): void {
  if (barStarted) bar?.stop();
  barStarted = false;
}
const megabytes = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

let summary: IngestSummary;
try {
  summary = await ingestFile(department, file, {
    dir: dataDir(),
    acceptValid: values["accept-valid"],
    rejectsFile: values.rejects,
    onProgress: (bytesRead, totalBytes) => {
      if (bar === null || totalBytes < PROGRESS_MIN_BYTES) return;
      const payload = { mb: megabytes(bytesRead), totalMb: megabytes(totalBytes) };
      if (!barStarted) {
        bar.start(totalBytes, bytesRead, payload);
        barStarted = true;
      } else {
        bar.update(bytesRead, payload);
      }
    },
  });
} catch (error) {
  stopBar();
  if (error instanceof IngestError) {
    // A missing or unreadable file is a wrong argument, not a failed import.
    console.error(`import failed: ${error.message}`);
    process.exit(2);
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("SQLITE_")) {
    // E.g. SQLITE_BUSY when another import holds the write lock: nothing was imported.
    console.error(`import failed, nothing imported: ${(error as Error).message} (${code})`);
    process.exit(1);
  }
  if ((typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) || error instanceof RangeError) {
    // The system refused a read or a write (EIO, ENOSPC writing the rejects file…), or a line
    // too long for a string: the transaction was rolled back, and a stack trace would not help.
    console.error(`import failed, nothing imported: ${(error as Error).message}`);
    process.exit(1);
  }
  throw error;
}
stopBar();

const seconds = (summary.elapsedMs / 1000).toFixed(1);
if (!summary.committed) {
  console.error(
    `rejected: ${summary.rejected} of ${summary.lines} lines are bad, nothing imported into ${department}`,
  );
  printProblems(summary);
  if (values.rejects !== undefined) console.error(`bad lines written to ${values.rejects}`);
  console.error("fix the export and import again, or keep the good lines with --accept-valid");
  process.exit(1);
}
const kinds = summary.imported > 0 ? ` (${describeKinds(summary.byKind)})` : "";
const records = summary.imported === 1 ? "record" : "records";
console.log(`imported ${summary.imported} ${records}${kinds} into ${department} in ${seconds} s`);
if (summary.rejected > 0) {
  console.error(`rejected: ${summary.rejected} bad lines, written to ${values.rejects}`);
  printProblems(summary);
}
if (summary.imported === 0 && summary.rejected > 0) process.exit(1);
