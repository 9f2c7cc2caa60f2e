/**
 * The benchmarks' population: seeded once per (persons, seed) into `.bench/data-p<N>-s<S>`, and
 * reused by every later run of `npm run bench` and `npm run bench:call`; with it, the persons'
 * ids in a seeded random order, the same for every gateway and run.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { DEPARTMENTS } from "../../common/departments.ts";
import { databasePath } from "../../common/sqlite.ts";
import { ROOT, type Running, type startNode } from "./processes.ts";

export interface BenchPopulation {
  /** The data directory: one SQLite file per department. */
  dir: string;
  /** The population's reference day (`asOf`), from which the scenarios' dates are derived. */
  day: string;
  /** A JSON list of every person's id, shuffled. */
  idsFile: string;
}

export const BENCH_DIR = join(ROOT, ".bench");

/** Seeds the population unless it is there (through a `.partial` folder: never half a one). */
export async function benchPopulation(options: {
  persons: number;
  seed: number;
  log: (message: string) => void;
  /** Starts the seeding process (the caller's, so that it is stopped with the caller). */
  start: (...args: Parameters<typeof startNode>) => Running;
}): Promise<BenchPopulation> {
  const { persons, seed, log, start } = options;
  const dir = join(BENCH_DIR, `data-p${persons}-s${seed}`);
  const marker = join(dir, "demo-subjects.json");
  if (!existsSync(marker)) {
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    log(`seeding ${persons} persons (seed ${seed}) into ${dir} — once; later runs reuse it`);
    const seeding = start("seed", "scripts/seed.ts", [
      "--persons",
      String(persons),
      "--seed",
      String(seed),
      "--data-dir",
      partial,
    ]);
    const code = await new Promise<number | null>((resolve) => seeding.child.on("exit", resolve));
    if (code !== 0) throw new Error(`seeding failed:\n${seeding.output()}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  const day = (JSON.parse(readFileSync(marker, "utf8")) as { asOf: string }).asOf;

  const idsFile = join(dir, "bench-ids.json");
  if (!existsSync(idsFile)) {
    const database = new Database(databasePath("hukou", dir), { readonly: true });
    const ids = (database.prepare("SELECT id FROM person ORDER BY id").pluck().all() as string[])
      // Shuffled with a seeded generator: random persons, the same ones for every gateway and run.
      .map((id, index) => ({ id, key: mulberry32(seed * 7919 + index) }))
      .sort((x, y) => x.key - y.key)
      .map((entry) => entry.id);
    database.close();
    writeFileSync(idsFile, JSON.stringify(ids));
  }
  // The subgraphs read their files through mmap: start every gateway from the same warm page cache.
  for (const department of DEPARTMENTS) readFileSync(databasePath(department, dir));
  return { dir, day, idsFile };
}

function mulberry32(state: number): number {
  let t = (state + 0x6d2b79f5) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
