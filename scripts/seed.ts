/**
 * `npm run seed -- --persons N [--seed S] [--as-of YYYY-MM-DD] [--data-dir DIR] [--jobs J]`:
 * replaces the six department databases with a deterministic demo population (same N, S and date
 * → same records) and writes `demo-subjects.json` with ids worth trying. Defaults: seed 1, as of
 * today in Beijing, `DATA_DIR` or `./data`, one job per core (at most 2). Restart running
 * subgraphs afterwards: they keep the replaced files open.
 *
 * With two jobs, two processes generate the same population and each writes half of the
 * departments: generating is cheap next to validating and writing, so this nearly halves the time.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { todayInBeijing } from "../common/clock.ts";
import { DEPARTMENTS, type Department, isDepartment } from "../common/departments.ts";
import { isCalendarDate } from "../common/ids.ts";
import { KINDS } from "../common/records.ts";
import { dataDir, seedingMarker } from "../common/sqlite.ts";
import {
  DEMO_SUBJECT_KINDS,
  type DemoSubjectKind,
  demoSubjectsFile,
  type SeedOptions,
  type SeedSummary,
  seedPopulation,
} from "./population.ts";

const USAGE = `usage: npm run seed -- --persons N [--seed S] [--as-of YYYY-MM-DD] [--data-dir DIR] [--jobs J]
  --persons N   population size (e.g. 10000; 2000000 takes a few minutes)
  --seed S      seed of the population, an integer 0..4294967295 (default 1)
  --as-of D     the day histories run up to (default today in Beijing)
  --data-dir D  where the department databases go (default DATA_DIR or ./data); they are replaced
  --jobs J      processes writing in parallel, 1 or 2 (default: 2 when there are 2 cores)`;

/**
 * Departments per job, balanced by measured work: contributions and income tax dominate (about
 * 10 and 9 million records for 2 million persons), hukou's 3.8 million rows are the dearest.
 */
const JOB_DEPARTMENTS: Record<number, Department[][]> = {
  1: [[...DEPARTMENTS]],
  2: [
    ["social", "traffic", "civil"],
    ["tax", "hukou", "market"],
  ],
};

type JobMessage = { progress: number } | { summary: SeedSummary };

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        persons: { type: "string" },
        seed: { type: "string", default: "1" },
        "as-of": { type: "string" },
        "data-dir": { type: "string" },
        jobs: { type: "string" },
        // Internal: a job process writes only these departments and reports over IPC.
        departments: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    return usageError((error as Error).message);
  }
}

function wholeNumber(name: string, text: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) > max) usageError(`${name} must be an integer 0..${max}`);
  return Number(text);
}

const jobProcesses: ChildProcess[] = [];

/** Runs one job in a child process (same runtime flags, so tsx carries over). */
function runJob(
  options: SeedOptions,
  departments: readonly Department[],
  onProgress: (persons: number) => void,
): Promise<SeedSummary> {
  const args = [
    `--persons=${options.persons}`,
    `--seed=${options.seed}`,
    `--as-of=${options.asOf}`,
    `--data-dir=${options.dir}`,
    `--departments=${departments.join(",")}`,
  ];
  const child = fork(fileURLToPath(import.meta.url), args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  jobProcesses.push(child);
  return new Promise((resolve, reject) => {
    let summary: SeedSummary | null = null;
    child.on("message", (message: JobMessage) => {
      if ("progress" in message) onProgress(message.progress);
      else summary = message.summary;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0 && summary !== null) resolve(summary);
      else reject(new Error(`seeding ${departments.join(", ")} failed (exit code ${code})`));
    });
  });
}

function mergeSummaries(summaries: SeedSummary[]): SeedSummary {
  const [first, ...rest] = summaries as [SeedSummary, ...SeedSummary[]];
  const merged: SeedSummary = {
    ...first,
    byDepartment: { ...first.byDepartment },
    byKind: { ...first.byKind },
  };
  for (const summary of rest) {
    merged.records += summary.records;
    for (const department of DEPARTMENTS) {
      merged.byDepartment[department] += summary.byDepartment[department];
    }
    for (const [kind, count] of Object.entries(summary.byKind)) {
      merged.byKind[kind] = (merged.byKind[kind] ?? 0) + count;
    }
  }
  return merged;
}

function printSummary(summary: SeedSummary, options: SeedOptions, jobs: number): void {
  const seconds = summary.elapsedMs / 1000;
  console.log(
    `seeded ${summary.persons} persons (seed ${options.seed}, as of ${options.asOf}) into ${options.dir}: ` +
      `${summary.records} records in ${seconds.toFixed(1)} s ` +
      `(${Math.round(summary.records / seconds)} records/s, ${jobs} job${jobs === 1 ? "" : "s"})`,
  );
  for (const department of DEPARTMENTS) {
    const kinds = Object.keys(KINDS[department])
      .map((kind) => `${kind} ${summary.byKind[kind] ?? 0}`)
      .join(", ");
    const count = String(summary.byDepartment[department]).padStart(10);
    console.log(`  ${department.padEnd(8)}${count}  (${kinds})`);
  }
}

function writeDemoSubjects(summary: SeedSummary, options: SeedOptions): void {
  const file = demoSubjectsFile(options.dir);
  const subjects = Object.fromEntries(
    Object.entries(DEMO_SUBJECT_KINDS).map(([kind, description]) => [
      kind,
      { description, ids: summary.subjects[kind as DemoSubjectKind] },
    ]),
  );
  const content = { seed: options.seed, persons: options.persons, asOf: options.asOf, subjects };
  writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`);
  console.log(`Demo subjects worth trying (all in ${file}):`);
  // One subject fits several kinds (an organisation with a large quota is an eligible one):
  // each kind shows one not shown yet when it has one.
  const shown = new Set<string>();
  for (const [kind, description] of Object.entries(DEMO_SUBJECT_KINDS)) {
    const ids = summary.subjects[kind as DemoSubjectKind];
    const id = ids.find((candidate) => !shown.has(candidate)) ?? ids[0];
    if (id === undefined) continue;
    shown.add(id);
    console.log(`  ${id}  ${description}`);
  }
}

const values = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.persons === undefined) usageError("missing --persons");
const persons = wholeNumber("--persons", values.persons, 100_000_000);
if (persons < 1) usageError("--persons must be at least 1");
const seed = wholeNumber("--seed", values.seed, 0xffffffff);
const asOf = values["as-of"] ?? todayInBeijing();
if (!isCalendarDate(asOf) || asOf < "2016-01-01") {
  usageError("--as-of must be a YYYY-MM-DD date from 2016 on (the youngest are born by 2015)");
}
const options: SeedOptions = { persons, seed, asOf, dir: values["data-dir"] ?? dataDir() };

if (values.departments !== undefined) {
  // A job process: write the given departments, report progress and the summary to the parent —
  // and stop with it: a seed whose parent is gone is not finished by anyone.
  process.once("disconnect", () => process.exit(1));
  const parent = process.ppid;
  const departments = values.departments.split(",").filter(isDepartment);
  let summary: SeedSummary;
  try {
    summary = seedPopulation({
      ...options,
      departments,
      onProgress: (done) => {
        // The parent is gone (this loop holds the event loop, so neither its disconnect nor
        // `process.connected` changes; the parent process number does): stop, without a stack
        // trace for the closed channel.
        if (process.ppid !== parent) process.exit(1);
        process.send?.({ progress: done } satisfies JobMessage);
      },
    });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    console.error(`seed failed (${departments.join(", ")}): ${code ? `${code} ` : ""}${message}`);
    process.exit(1);
  }
  if (process.ppid !== parent) process.exit(1);
  process.send?.({ summary } satisfies JobMessage);
  process.removeAllListeners("disconnect");
  process.disconnect?.();
} else {
  const jobs =
    values.jobs === undefined
      ? Math.min(2, availableParallelism())
      : wholeNumber("--jobs", values.jobs, 2);
  const groups = JOB_DEPARTMENTS[jobs];
  if (groups === undefined) usageError("--jobs must be 1 or 2");

  const bar =
    process.stderr.isTTY === true
      ? new cliProgress.SingleBar(
          {
            format: "seeding {bar} {percentage}% | {value}/{total} persons | ETA {eta_formatted}",
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  bar?.start(persons, 0);
  // The bar follows the slowest job.
  const progress = groups.map(() => 0);
  const report = (job: number) => (done: number) => {
    progress[job] = done;
    bar?.update(Math.min(...progress));
  };

  // Stopped (`npm start` stopping, or a signal to this process only): the jobs stop too, rather
  // than write on after it; the marker stays, so that the next start seeds again.
  // (One job runs here, synchronously: a handler would only defer the signal to its end.)
  for (const signal of jobs > 1 ? (["SIGINT", "SIGTERM"] as const) : []) {
    process.once(signal, () => {
      for (const child of jobProcesses) if (child.exitCode === null) child.kill(signal);
      bar?.stop();
      process.exit(130);
    });
  }
  const started = performance.now();
  // Present while databases are being written: `npm start` seeds again over an interrupted seed
  // instead of serving half a population.
  const marker = seedingMarker(options.dir);
  try {
    mkdirSync(options.dir, { recursive: true });
    writeFileSync(marker, `${process.pid}\n`);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    console.error(`seed failed: cannot write to ${options.dir}: ${code ?? message}`);
    process.exit(1);
  }
  let summary: SeedSummary;
  try {
    summary =
      jobs === 1
        ? seedPopulation({ ...options, onProgress: report(0) })
        : mergeSummaries(
            await Promise.all(groups.map((group, job) => runJob(options, group, report(job)))),
          );
  } catch (error) {
    bar?.stop();
    // One job failed: the others would only write half a population.
    for (const child of jobProcesses) if (child.exitCode === null) child.kill();
    console.error(`seed failed: ${(error as Error).message}`);
    process.exit(1);
  }
  bar?.stop();
  summary.elapsedMs = performance.now() - started;
  printSummary(summary, options, jobs);
  writeDemoSubjects(summary, options);
  rmSync(marker, { force: true });
}
