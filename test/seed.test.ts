/** The demo population: deterministic, valid through the import contract, and realistic enough. */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { getTableConfig } from "drizzle-orm/sqlite-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEPARTMENTS, type Department } from "../common/departments.ts";
import { parseRecord } from "../common/records.ts";
import { openDepartmentDatabase, type Sqlite } from "../common/sqlite.ts";
import {
  DEMO_SUBJECT_KINDS,
  type DemoSubjectKind,
  demoSubjects,
  demoSubjectsFile,
  generatePopulation,
  type SeedSummary,
  seedPopulation,
} from "../scripts/population.ts";
import { departmentModules } from "../subgraphs/registry.ts";
import { tempDataDir } from "./helpers.ts";

const repository = fileURLToPath(new URL("..", import.meta.url));
const population = { persons: 2_000, seed: 7, asOf: "2026-11-01" };

/** Row count and a hash of every row (in primary-key order) of every table of a department. */
function fingerprint(department: Department, dir: string): Record<string, string> {
  const module = departmentModules[department];
  const database = openDepartmentDatabase(department, module.tables, { dir });
  try {
    return Object.fromEntries(
      module.tables.map((table) => {
        const { name, columns } = getTableConfig(table);
        const order = columns.map((column) => `"${column.name}"`).join(", ");
        const hash = createHash("sha256");
        let rows = 0;
        for (const row of database.sqlite
          .prepare(`SELECT * FROM "${name}" ORDER BY ${order}`)
          .iterate()) {
          hash.update(`${JSON.stringify(row)}\n`);
          rows++;
        }
        return [name, `${rows} rows ${hash.digest("hex").slice(0, 16)}`];
      }),
    );
  } finally {
    database.close();
  }
}

function fingerprints(dir: string): Record<string, Record<string, string>> {
  return Object.fromEntries(
    DEPARTMENTS.map((department) => [department, fingerprint(department, dir)]),
  );
}

/** Runs a query against one department's seeded database. */
function query<T>(department: Department, dir: string, run: (sqlite: Sqlite) => T): T {
  const database = openDepartmentDatabase(department, departmentModules[department].tables, {
    dir,
  });
  try {
    return run(database.sqlite);
  } finally {
    database.close();
  }
}

const dirs: Array<ReturnType<typeof tempDataDir>> = [];
function freshDataDir(): string {
  const created = tempDataDir("mianzheng-seed-");
  dirs.push(created);
  return created.dir;
}

let first: string;
let summary: SeedSummary;

beforeAll(() => {
  first = freshDataDir();
  summary = seedPopulation({ ...population, dir: first });
});

afterAll(() => {
  for (const created of dirs) created.remove();
});

describe("seeding the demo population", () => {
  it("writes exactly the persons asked for, and the records it counts", () => {
    expect(summary.persons).toBe(2_000);
    expect(fingerprint("hukou", first).person).toMatch(/^2000 rows /);
    const counted = Object.values(summary.byDepartment).reduce((sum, n) => sum + n, 0);
    expect(summary.records).toBe(counted);
    // A realistic population carries histories: well over one record per person.
    expect(summary.records).toBeGreaterThan(10 * 2_000);
  });

  it("is deterministic: the same persons, seed and date give identical tables", () => {
    const second = freshDataDir();
    seedPopulation({ ...population, dir: second });
    expect(fingerprints(second)).toEqual(fingerprints(first));
  });

  it("replaces an earlier population in the same directory", () => {
    const dir = freshDataDir();
    seedPopulation({ ...population, seed: 8, dir });
    seedPopulation({ ...population, dir });
    expect(fingerprints(dir)).toEqual(fingerprints(first));
  });

  it("gives another population for another seed", () => {
    const records: string[] = [];
    generatePopulation({ ...population, persons: 50, seed: 8 }, (_, line) => {
      if (line.kind === "person") records.push(line.id as string);
    });
    const same: string[] = [];
    generatePopulation({ ...population, persons: 50 }, (_, line) => {
      if (line.kind === "person") same.push(line.id as string);
    });
    expect(records).toHaveLength(50);
    expect(records).not.toEqual(same);
  });

  it("makes only records that pass the import contract", () => {
    const problems: string[] = [];
    let records = 0;
    generatePopulation(population, (department, line) => {
      records++;
      const parsed = parseRecord(department, line);
      if (!parsed.ok) problems.push(`${department} ${line.kind}: ${parsed.reason}`);
    });
    expect(problems).toEqual([]);
    expect(records).toBe(summary.records);
  });

  it("makes every kind of record, with the variety the policies need", () => {
    for (const kind of [
      "person",
      "parentage",
      "residencePermit",
      "driverLicense",
      "vehicle",
      "contribution",
      "incomeTax",
      "vat",
      "organization",
      "marriage",
    ]) {
      expect(summary.byKind[kind], kind).toBeGreaterThan(0);
    }
    const permitKinds = query("hukou", first, (sqlite) =>
      sqlite.prepare("SELECT DISTINCT kind FROM residence_permit ORDER BY kind").pluck().all(),
    );
    expect(permitKinds).toEqual(["RESIDENCE", "WORK_RESIDENCE"]);
    const dissolutions = query("civil", first, (sqlite) =>
      sqlite
        .prepare("SELECT DISTINCT dissolution FROM marriage ORDER BY dissolution")
        .pluck()
        .all(),
    );
    expect(dissolutions).toEqual([null, "DEATH", "DIVORCE"]);
    const licenceStatuses = query("traffic", first, (sqlite) =>
      sqlite.prepare("SELECT DISTINCT status FROM driver_license ORDER BY status").pluck().all(),
    );
    expect(licenceStatuses).toEqual(["REVOKED", "SUSPENDED", "VALID"]);
    const organizationStatuses = query("market", first, (sqlite) =>
      sqlite.prepare("SELECT DISTINCT status FROM organization ORDER BY status").pluck().all(),
    );
    expect(organizationStatuses).toContain("ACTIVE");
    expect(organizationStatuses.length).toBeGreaterThan(1);
  });

  it("keeps the population consistent across departments", () => {
    const hukou = `${first}/hukou.db`;
    // Deceased persons have a death date; every parent is older than their child.
    query("hukou", first, (sqlite) => {
      expect(
        sqlite
          .prepare("SELECT count(*) FROM person WHERE alive = 0 AND died_on IS NULL")
          .pluck()
          .get(),
      ).toBe(0);
      expect(
        sqlite.prepare("SELECT count(*) FROM person WHERE alive = 0").pluck().get(),
      ).toBeGreaterThan(0);
      const youngParents = sqlite
        .prepare(
          `SELECT count(*) FROM parentage JOIN person p ON p.id = parent_id JOIN person c ON c.id = child_id
           WHERE p.birth_date >= c.birth_date`,
        )
        .pluck()
        .get();
      expect(youngParents).toBe(0);
      const births = sqlite
        .prepare("SELECT min(birth_date), max(birth_date) FROM person")
        .raw()
        .get();
      expect(births).toEqual([expect.stringMatching(/^194/), expect.stringMatching(/^201[0-5]/)]);
    });
    query("civil", first, (sqlite) => {
      sqlite.prepare("ATTACH DATABASE ? AS hukou").run(hukou);
      // A marriage dissolved by death ends on the day one party died; both parties are persons.
      const deaths = sqlite
        .prepare(
          `SELECT count(*) AS marriages,
                  sum(EXISTS (SELECT 1 FROM hukou.person p WHERE p.id IN (party_a, party_b)
                              AND p.alive = 0 AND p.died_on = dissolved_on)) AS matching
           FROM marriage WHERE dissolution = 'DEATH'`,
        )
        .get() as { marriages: number; matching: number };
      expect(deaths.marriages).toBeGreaterThan(0);
      expect(deaths.matching).toBe(deaths.marriages);
      const strangers = sqlite
        .prepare(
          `SELECT count(*) FROM marriage WHERE party_a NOT IN (SELECT id FROM hukou.person)
           OR party_b NOT IN (SELECT id FROM hukou.person)`,
        )
        .pluck()
        .get();
      expect(strangers).toBe(0);
    });
    query("traffic", first, (sqlite) => {
      sqlite.prepare("ATTACH DATABASE ? AS market").run(`${first}/market.db`);
      const owners = sqlite
        .prepare(
          `SELECT sum(owner_id IN (SELECT uscc FROM market.organization)) AS organizations, count(*) AS all_vehicles
           FROM vehicle`,
        )
        .get() as { organizations: number; all_vehicles: number };
      expect(owners.organizations).toBeGreaterThan(0);
      expect(owners.organizations).toBeLessThan(owners.all_vehicles);
    });
  });

  it("finds demo subjects of every kind, and the same ones without writing", () => {
    for (const kind of Object.keys(DEMO_SUBJECT_KINDS) as DemoSubjectKind[]) {
      expect(summary.subjects[kind].length, kind).toBeGreaterThan(0);
    }
    expect(demoSubjects(population)).toEqual(summary.subjects);
    const persons = Object.entries(summary.subjects)
      .filter(([kind]) => !kind.startsWith("organization") && kind !== "eligibleOrganization")
      .flatMap(([, ids]) => ids);
    const known = query("hukou", first, (sqlite) =>
      sqlite
        .prepare("SELECT count(*) FROM person WHERE id IN (SELECT value FROM json_each(?))")
        .pluck()
        .get(JSON.stringify([...new Set(persons)])),
    );
    expect(known).toBe(new Set(persons).size);
    // The migrant with a full history has 60 months in Beijing paid by the reference day.
    const [migrant] = summary.subjects.migrantFullHistory;
    const months = query("social", first, (sqlite) =>
      sqlite
        .prepare(
          `SELECT count(*) FROM contribution WHERE person_id = ? AND month BETWEEN '2021-11' AND '2026-10'
           AND region LIKE '11%' AND paid_on <= '2026-11-01'`,
        )
        .pluck()
        .get(migrant),
    );
    expect(months).toBe(60);
  });
});

describe("demo subjects of a large population", () => {
  it("are found in the first households, as a full run finds them", () => {
    const full = generatePopulation({ ...population, persons: 30_000 }, () => {});
    for (const ids of Object.values(full)) expect(ids).toHaveLength(3);
    // Stops once every kind has its examples, instead of drawing two million persons.
    expect(demoSubjects({ ...population, persons: 2_000_000 })).toEqual(full);
  });
});

describe("npm run seed (the CLI)", () => {
  it("seeds with two jobs the same databases as in one process, and lists demo subjects", () => {
    const dir = freshDataDir();
    const result = spawnSync(
      "npx",
      [
        "tsx",
        "scripts/seed.ts",
        "--persons=2000",
        "--seed=7",
        "--as-of=2026-11-01",
        `--data-dir=${dir}`,
        "--jobs=2",
      ],
      { cwd: repository, encoding: "utf8" },
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(
      /^seeded 2000 persons \(seed 7, as of 2026-11-01\) into .*2 jobs\)$/m,
    );
    expect(result.stdout).toContain("Demo subjects worth trying");
    expect(fingerprints(dir)).toEqual(fingerprints(first));
    const file = JSON.parse(readFileSync(demoSubjectsFile(dir), "utf8"));
    expect(file).toMatchObject({ seed: 7, persons: 2000, asOf: "2026-11-01" });
    expect(file.subjects.minor.ids).toEqual(summary.subjects.minor);
  }, 120_000);

  it("refuses bad arguments with exit code 2", () => {
    const result = spawnSync("npx", ["tsx", "scripts/seed.ts", "--persons=lots"], {
      cwd: repository,
      encoding: "utf8",
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("--persons must be an integer");
  }, 60_000);
});
