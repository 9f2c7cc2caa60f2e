/** Importing department exports: counts, idempotence, every rejection rule, CSV, and the CLI. */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Department } from "../common/departments.ts";
import { makePersonId } from "../common/ids.ts";
import { IngestError, ingestFile, ingestRecords, MAX_CSV_RECORD_LINES } from "../common/ingest.ts";
import { openDepartmentDatabase } from "../common/sqlite.ts";
import { departmentModules } from "../subgraphs/registry.ts";
import { tempDataDir } from "./helpers.ts";

const repository = fileURLToPath(new URL("..", import.meta.url));

// 11010519491231002X is the published example (female, born 1949-12-31).
const MOTHER = "11010519491231002X";
const SON = makePersonId("110105", "1978-03-15", 1);
const MIGRANT = makePersonId("130102", "1988-07-20", 3);

const goodHukouLines = [
  {
    kind: "person",
    id: MOTHER,
    name: "王秀英",
    gender: "F",
    birthDate: "1949-12-31",
    ethnicity: "汉族",
    hukouRegion: "110105",
    hukouAddress: "北京市朝阳区建国路88号院3号楼2单元501",
    status: "ALIVE",
  },
  {
    kind: "person",
    id: SON,
    name: "李强",
    gender: "M",
    birthDate: "1978-03-15",
    hukouRegion: "110105",
    status: "ALIVE",
  },
  {
    kind: "person",
    id: MIGRANT,
    name: "张伟",
    gender: "M",
    birthDate: "1988-07-20",
    hukouRegion: "130102",
    status: "ALIVE",
  },
  { kind: "parentage", parentId: MOTHER, childId: SON },
  {
    kind: "residencePermit",
    personId: MIGRANT,
    number: "BJJZ110105000000001",
    permitKind: "RESIDENCE",
    region: "110105",
    validFrom: "2026-01-10",
    validTo: "2027-01-09",
  },
];

const ndjson = (lines: readonly unknown[]) =>
  `${lines.map((line) => (typeof line === "string" ? line : JSON.stringify(line))).join("\n")}\n`;

async function* linesOf(text: string): AsyncGenerator<string> {
  yield* text.split("\n");
}

function rowCounts(department: Department, dir: string): Record<string, number> {
  const module = departmentModules[department];
  const database = openDepartmentDatabase(department, module.tables, { dir });
  try {
    const tables = database.sqlite
      // The department's tables, not SQLite's own (planner statistics: sqlite_stat1).
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .pluck()
      .all() as string[];
    return Object.fromEntries(
      tables.map((table) => [
        table,
        database.sqlite.prepare(`SELECT count(*) FROM "${table}"`).pluck().get() as number,
      ]),
    );
  } finally {
    database.close();
  }
}

let data: ReturnType<typeof tempDataDir>;
const databases: Array<ReturnType<typeof tempDataDir>> = [];

/** A fresh data directory for one test's databases (removed after all tests). */
function freshDataDir(): { dir: string } {
  const created = tempDataDir("mianzheng-import-db-");
  databases.push(created);
  return created;
}

beforeAll(() => {
  data = tempDataDir("mianzheng-import-files-");
});

afterAll(() => {
  for (const created of databases) created.remove();
  data.remove();
});

describe("importing a good export", () => {
  it("writes every record and reports counts per kind", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou-good.ndjson");
    // An empty line in the middle is skipped, not counted.
    writeFileSync(file, ndjson([...goodHukouLines.slice(0, 2), "", ...goodHukouLines.slice(2)]));

    const summary = await ingestFile("hukou", file, { dir });

    expect(summary).toMatchObject({
      department: "hukou",
      lines: 5,
      imported: 5,
      rejected: 0,
      committed: true,
      problems: [],
      byKind: { person: 3, parentage: 1, residencePermit: 1 },
    });
    expect(rowCounts("hukou", dir)).toEqual({ parentage: 1, person: 3, residence_permit: 1 });
  });

  it("is idempotent: importing the same file twice leaves the same rows", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou-twice.ndjson");
    writeFileSync(file, ndjson(goodHukouLines));

    await ingestFile("hukou", file, { dir });
    const afterFirst = rowCounts("hukou", dir);
    const second = await ingestFile("hukou", file, { dir });

    expect(second.imported).toBe(5);
    expect(rowCounts("hukou", dir)).toEqual(afterFirst);
    expect(afterFirst).toEqual({ parentage: 1, person: 3, residence_permit: 1 });
  });

  it("updates a record in place when a later export changes it", async () => {
    const { dir } = freshDataDir();
    await ingestRecords("hukou", linesOf(ndjson(goodHukouLines)), { dir });
    const died = { ...goodHukouLines[0], status: "DECEASED", diedOn: "2025-03-01" };
    await ingestRecords("hukou", linesOf(ndjson([died])), { dir });

    const database = openDepartmentDatabase("hukou", departmentModules.hukou.tables, { dir });
    const row = database.sqlite
      .prepare("SELECT alive, died_on FROM person WHERE id = ?")
      .get(MOTHER) as { alive: number; died_on: string };
    database.close();
    expect(row).toEqual({ alive: 0, died_on: "2025-03-01" });
    expect(rowCounts("hukou", dir).person).toBe(3);
  });

  it("imports other departments' exports too (money becomes integer fen)", async () => {
    const { dir } = freshDataDir();
    const lines = [
      {
        kind: "incomeTax",
        personId: MIGRANT,
        period: "2025-03",
        region: "110105",
        amount: "1234.5",
        paidOn: "2025-04-15",
      },
      {
        kind: "vat",
        uscc: "91350100M000100Y43",
        period: "2025-03",
        region: "350100",
        amount: "60000",
        paidOn: "2025-04-15",
      },
    ];
    const summary = await ingestRecords("tax", linesOf(ndjson(lines)), { dir });
    expect(summary.byKind).toEqual({ incomeTax: 1, vat: 1 });

    const database = openDepartmentDatabase("tax", departmentModules.tax.tables, { dir });
    const amount = database.sqlite.prepare("SELECT amount FROM income_tax").pluck().get();
    database.close();
    expect(amount).toBe(123450);
  });

  it("takes the code of a division withdrawn since, in its province; refuses a province nobody has", async () => {
    const { dir } = freshDataDir();
    const vehicle = (plate: string, region: string) => ({
      kind: "vehicle",
      plate,
      ownerId: MIGRANT,
      vehicleKind: "PASSENGER_CAR",
      region,
      registeredOn: "2010-05-01",
    });
    // 110228: Miyun County until 2015, now the district 110118.
    const summary = await ingestRecords(
      "traffic",
      linesOf(ndjson([vehicle("京B12345", "110228"), vehicle("京B12346", "990105")])),
      { dir, acceptValid: true },
    );
    expect(summary.imported).toBe(1);
    expect(summary.problems).toEqual([
      { line: 2, reason: 'field "region" is not a GB/T 2260 division code' },
    ]);
  });
});

/** One bad line per rule of records.md, each with the reason the report must give. */
const badHukouLines: Array<{ rule: string; line: unknown; reason: RegExp }> = [
  {
    rule: "unknown kind",
    line: { kind: "household", id: MOTHER },
    reason: /^kind "household" is not one of hukou's kinds \(person, parentage, residencePermit\)$/,
  },
  {
    rule: "kind of another department",
    line: {
      kind: "vehicle",
      plate: "京A12345",
      ownerId: SON,
      vehicleKind: "PASSENGER_CAR",
      region: "110105",
      registeredOn: "2020-01-01",
    },
    reason: /^kind "vehicle" is not one of hukou's kinds .*; it belongs to traffic$/,
  },
  {
    rule: "missing field",
    line: { ...goodHukouLines[1], name: undefined },
    reason: /^field "name" is missing$/,
  },
  {
    rule: "bad check character",
    line: { ...goodHukouLines[0], id: "110105194912310021" },
    reason: /^field "id" is not a valid citizen identity number$/,
  },
  {
    rule: "impossible date",
    line: { ...goodHukouLines[4], validFrom: "2023-02-29" },
    reason: /^field "validFrom" is not a real YYYY-MM-DD date$/,
  },
  {
    rule: "gender disagreeing with the id",
    line: { ...goodHukouLines[1], gender: "F" },
    reason: /^gender disagrees with the sequence digit of the id$/,
  },
  {
    rule: "birth date disagreeing with the id",
    line: { ...goodHukouLines[1], birthDate: "1978-03-16" },
    reason: /^birthDate disagrees with the id$/,
  },
  {
    rule: "broken JSON",
    line: '{"kind":"person","id":"11010519491231002X",',
    reason: /^not valid JSON: /,
  },
  {
    // A name every object inherits is no kind (it would have passed with no fields, counted as imported).
    rule: "a kind named after an Object property",
    line: { kind: "constructor", id: MOTHER },
    reason: /^kind "constructor" is not one of hukou's kinds/,
  },
];

describe("rejecting bad lines (all or nothing)", () => {
  // Good lines first, then the bad ones, so line numbers are 6, 7, …
  const lines = [...goodHukouLines, ...badHukouLines.map((bad) => bad.line)];

  it.each(badHukouLines)("reports $rule with its line number", async ({ line, reason }) => {
    const { dir } = freshDataDir();
    const summary = await ingestRecords("hukou", linesOf(ndjson([...goodHukouLines, line])), {
      dir,
    });
    expect(summary.committed).toBe(false);
    expect(summary.imported).toBe(0);
    expect(summary.rejected).toBe(1);
    expect(summary.problems).toHaveLength(1);
    expect(summary.problems[0]?.line).toBe(goodHukouLines.length + 1);
    expect(summary.problems[0]?.reason).toMatch(reason);
    expect(rowCounts("hukou", dir)).toEqual({ parentage: 0, person: 0, residence_permit: 0 });
  });

  it("reports every bad line of a file with its number and imports nothing", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou-mixed.ndjson");
    writeFileSync(file, ndjson(lines));

    const summary = await ingestFile("hukou", file, { dir });

    expect(summary.lines).toBe(lines.length);
    expect(summary.rejected).toBe(badHukouLines.length);
    expect(summary.imported).toBe(0);
    expect(summary.byKind).toEqual({});
    expect(summary.problems.map((problem) => problem.line)).toEqual(
      badHukouLines.map((_, index) => goodHukouLines.length + index + 1),
    );
    summary.problems.forEach((problem, index) => {
      expect(problem.reason).toMatch((badHukouLines[index] as { reason: RegExp }).reason);
    });
    expect(rowCounts("hukou", dir)).toEqual({ parentage: 0, person: 0, residence_permit: 0 });
  });

  it("rejects malformed money", async () => {
    const { dir } = freshDataDir();
    const line = {
      kind: "incomeTax",
      personId: MIGRANT,
      period: "2025-03",
      region: "110105",
      amount: "12.345",
      paidOn: "2025-04-15",
    };
    const summary = await ingestRecords(
      "tax",
      linesOf(ndjson([line, { ...line, amount: "12.34" }])),
      {
        dir,
      },
    );
    expect(summary.problems).toEqual([
      { line: 1, reason: 'field "amount" is not a yuan amount with at most 2 decimals' },
    ]);
    expect(summary.imported).toBe(0);
    expect(rowCounts("tax", dir)).toEqual({ income_tax: 0, vat: 0 });
  });

  it("lists at most maxProblems bad lines but counts them all", async () => {
    const { dir } = freshDataDir();
    const many = Array.from({ length: 250 }, () => "not json");
    const summary = await ingestRecords("hukou", linesOf(ndjson(many)), { dir });
    expect(summary.rejected).toBe(250);
    expect(summary.problems).toHaveLength(100);
    expect(summary.problems.at(-1)?.line).toBe(100);
  });

  it("refuses a rejects file that is the input itself, leaving the export as it was", async () => {
    const file = join(data.dir, "hukou-self.ndjson");
    writeFileSync(file, ndjson(goodHukouLines));
    await expect(
      ingestFile("hukou", file, { dir: freshDataDir().dir, acceptValid: true, rejectsFile: file }),
    ).rejects.toThrow(new IngestError(`the rejects file ${file} is the input file`));
    expect(readFileSync(file, "utf8")).toBe(ndjson(goodHukouLines));
  });

  it("explains a missing file", async () => {
    await expect(ingestFile("hukou", join(data.dir, "absent.ndjson"))).rejects.toThrow(
      new IngestError(`no such file: ${join(data.dir, "absent.ndjson")}`),
    );
  });
});

describe("accepting the valid lines", () => {
  it("imports the good lines and writes the bad ones with line numbers and reasons", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou-accept.ndjson");
    const rejectsFile = join(data.dir, "hukou-accept.rejects.ndjson");
    const lines = [goodHukouLines[0], badHukouLines[3]?.line, ...goodHukouLines.slice(1)];
    writeFileSync(file, ndjson(lines));

    const summary = await ingestFile("hukou", file, { dir, acceptValid: true, rejectsFile });

    expect(summary).toMatchObject({ committed: true, imported: 5, rejected: 1 });
    expect(rowCounts("hukou", dir)).toEqual({ parentage: 1, person: 3, residence_permit: 1 });
    const rejects = readFileSync(rejectsFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(rejects).toEqual([
      {
        line: 2,
        reason: 'field "id" is not a valid citizen identity number',
        text: JSON.stringify(badHukouLines[3]?.line),
      },
    ]);
  });
});

describe("CSV exports", () => {
  it("reads a header row, treats empty cells as absent and allows quoted line breaks", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou.csv");
    writeFileSync(
      file,
      [
        "kind,id,name,gender,birthDate,ethnicity,hukouRegion,hukouAddress,status,diedOn",
        `person,${MOTHER},王秀英,F,1949-12-31,汉族,110105,"北京市朝阳区建国路88号院, 3号楼",ALIVE,`,
        `person,${SON},李强,M,1978-03-15,,110105,"北京市朝阳区\n光华路1号",DECEASED,2024-05-06`,
        `person,${MIGRANT},张伟,M,1988-07-20,,130102,,ALIVE,`,
        "",
      ].join("\r\n"),
    );

    const summary = await ingestFile("hukou", file, { dir });

    expect(summary).toMatchObject({ lines: 3, imported: 3, rejected: 0 });
    const database = openDepartmentDatabase("hukou", departmentModules.hukou.tables, { dir });
    const rows = database.sqlite
      .prepare("SELECT id, ethnicity, hukou_address, alive, died_on FROM person ORDER BY id")
      .all();
    database.close();
    expect(rows).toEqual([
      {
        id: MOTHER,
        ethnicity: "汉族",
        hukou_address: "北京市朝阳区建国路88号院, 3号楼",
        alive: 1,
        died_on: null,
      },
      {
        id: SON,
        ethnicity: null,
        hukou_address: "北京市朝阳区\n光华路1号",
        alive: 0,
        died_on: "2024-05-06",
      },
      { id: MIGRANT, ethnicity: null, hukou_address: null, alive: 1, died_on: null },
    ]);
  });

  it("reports bad CSV rows with the line where they start", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou-bad.csv");
    writeFileSync(
      file,
      [
        "kind,id,name,gender,birthDate,hukouRegion,hukouAddress,status",
        `person,${MOTHER},王秀英,F,1949-12-31,110105,"two\nlines",ALIVE`,
        `person,${SON},李强,F,1978-03-15,110105,,ALIVE`,
        `person,${MIGRANT},张伟,M`,
        "",
      ].join("\n"),
    );

    const summary = await ingestFile("hukou", file, { dir });

    expect(summary.imported).toBe(0);
    expect(summary.problems).toEqual([
      { line: 4, reason: "gender disagrees with the sequence digit of the id" },
      { line: 5, reason: "has 4 cells where the header has 8" },
    ]);
  });

  it("rejects only the line of a quote that never closes, and reads the lines after it", async () => {
    const { dir } = freshDataDir();
    const file = join(data.dir, "hukou-stray-quote.csv");
    const persons = Array.from({ length: MAX_CSV_RECORD_LINES + 20 }, (_, index) => {
      const id = makePersonId("110105", "1990-01-01", 100 + index);
      const gender = Number(id[16]) % 2 === 1 ? "M" : "F";
      return `person,${id},测试${index},${gender},1990-01-01,110105,,ALIVE`;
    });
    writeFileSync(
      file,
      [
        "kind,id,name,gender,birthDate,hukouRegion,hukouAddress,status",
        `person,${SON},李"强,M,1978-03-15,110105,,ALIVE`,
        ...persons,
        "",
      ].join("\n"),
    );

    const summary = await ingestFile("hukou", file, { dir, acceptValid: true });

    expect(summary.problems).toEqual([
      {
        line: 2,
        reason: `a quoted cell opened on this line is not closed within ${MAX_CSV_RECORD_LINES} lines`,
      },
    ]);
    expect(summary).toMatchObject({ committed: true, imported: persons.length, rejected: 1 });
    expect(rowCounts("hukou", dir)).toMatchObject({ person: persons.length });
  });
});

describe("npm run import (the CLI)", () => {
  function runImport(args: string[], dir: string) {
    const result = spawnSync("npx", ["tsx", "scripts/import.ts", ...args], {
      cwd: repository,
      env: { ...process.env, DATA_DIR: dir },
      encoding: "utf8",
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  it("exits 0 with a summary, 1 when bad lines stopped the import, 2 on wrong usage", () => {
    const { dir } = freshDataDir();
    const good = join(data.dir, "cli-good.ndjson");
    const bad = join(data.dir, "cli-bad.ndjson");
    writeFileSync(good, ndjson(goodHukouLines));
    writeFileSync(bad, ndjson([...goodHukouLines, badHukouLines[5]?.line]));

    const imported = runImport(["hukou", good], dir);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(
      /^imported 5 records \(person: 3, parentage: 1, residencePermit: 1\) into hukou in \d+\.\d s$/m,
    );

    const rejected = runImport(["hukou", bad], dir);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain(
      "rejected: 1 of 6 lines are bad, nothing imported into hukou",
    );
    expect(rejected.stderr).toContain("line 6: gender disagrees with the sequence digit of the id");
    expect(rejected.stderr).not.toMatch(/\n\s+at /);

    const unknown = runImport(["hokou", good], dir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown department "hokou"');
    expect(unknown.stderr).toContain("hukou, traffic, social, tax, market, civil");

    const missing = runImport(["hukou", join(data.dir, "absent.ndjson")], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such file");
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);
});
