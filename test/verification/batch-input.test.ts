/**
 * The subjects `npm run verify` and the job API read from an input file (CSV or NDJSON), and the
 * outcome read back from a result line for the tally.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  detectFormat,
  formatOfMediaType,
  formatResultLine,
  type InputFormat,
  InputProblem,
  lineOutcome,
  MAX_RECORD_BYTES,
  readSubjects,
  runBatch,
  splitLines,
} from "../../gateway/verification/batch.ts";
import { tempDataDir } from "../helpers.ts";

const data = tempDataDir();
afterAll(() => data.remove());

let files = 0;
async function subjects(
  text: string,
  format: InputFormat,
  kind: "PERSON" | "ORGANIZATION" = "PERSON",
): Promise<Array<string | null>> {
  const file = join(data.dir, `input-${files++}`);
  writeFileSync(file, text);
  const read: Array<string | null> = [];
  for await (const record of readSubjects(file, kind, format)) read.push(record.subject);
  return read;
}

describe("reading subjects", () => {
  it("CSV: the id column whatever its case and padding, a BOM, CRLF, quotes, short rows", async () => {
    const csv =
      '\uFEFFname, ID ,note\r\nA,110105198503121015,x\r\n"B, b",  110105198503121023  ,"two\nlines"\r\nC\r\n\r\nD,"",y\r\n';
    expect(await subjects(csv, "csv")).toEqual([
      "110105198503121015",
      "110105198503121023",
      null,
      "",
    ]);
  });

  it("CSV: a subject column when there is no id column; uscc for organisations; the last of two", async () => {
    expect(await subjects("subject\n110105198503121015\n", "csv")).toEqual(["110105198503121015"]);
    expect(await subjects("uscc,id\n91110118MA0053D215,x\n", "csv", "ORGANIZATION")).toEqual([
      "91110118MA0053D215",
    ]);
    expect(await subjects("id,id\nfirst,second\n", "csv")).toEqual(["second"]);
  });

  it("CSV without the column fails, naming it", async () => {
    await expect(subjects("name\nA\n", "csv")).rejects.toThrow('no "id" (or "subject") column');
    // A header alone has no records to read.
    expect(await subjects("name\n", "csv")).toEqual([]);
  });

  it("NDJSON: objects, bare strings and numbers, broken lines as records without a subject", async () => {
    const ndjson =
      '{"id":"110105198503121015"}\n"110105198503121023"\n\n{oops\n{"subject":"X"}\n42\n';
    expect(await subjects(ndjson, "ndjson")).toEqual([
      "110105198503121015",
      "110105198503121023",
      null,
      "X",
      "42",
    ]);
  });

  it("NDJSON: an identity number written as a JSON number is no subject (its digits are lost)", async () => {
    // 110105198503121015 as a double is 110105198503121010. That one fails the check digit, but
    // about one rounding in eleven passes it, and would verify (and log an access to) somebody else.
    const ndjson = '{"id":110105198503121015}\n110105198503121015\n{"id":15.5}\n';
    expect(await subjects(ndjson, "ndjson")).toEqual([null, null, null]);
  });
});

describe("broken and hostile input", () => {
  it("tells a CSV with a quoted header from NDJSON, by the first line", () => {
    const file = (name: string, text: string) => {
      const path = join(data.dir, name);
      writeFileSync(path, text);
      return path;
    };
    expect(detectFormat(file("quoted", '"id","name"\n"110105198503121015","Wang"\n'))).toBe("csv");
    expect(detectFormat(file("bare", '"110105198503121015"\n"110105198503121023"\n'))).toBe(
      "ndjson",
    );
    expect(detectFormat(file("objects", '\uFEFF {"id":"110105198503121015"}\n'))).toBe("ndjson");
    expect(detectFormat(file("plain", "id\n110105198503121015\n"))).toBe("csv");
    expect(detectFormat(file("one-column", '"ID"\r\n"110105198503121015"\r\n'))).toBe("csv");
    expect(formatOfMediaType("text/csv; charset=utf-8")).toBe("csv");
    expect(formatOfMediaType("application/x-ndjson")).toBe("ndjson");
    expect(formatOfMediaType("application/octet-stream")).toBeNull();
  });

  it("CSV: a quote left open or closed wrongly is the file's problem, naming the line", async () => {
    const unclosed = subjects('id\n110105198503121015\n"110105198503121023\n', "csv");
    await expect(unclosed).rejects.toBeInstanceOf(InputProblem);
    await expect(
      subjects('id\n110105198503121015\n"110105198503121023"x\n', "csv"),
    ).rejects.toThrow(/the CSV cannot be read \(line 3\)/);
    // A quote left open gathers the lines after it into one field: bounded, not the whole file.
    const many = "110105198503121015\n".repeat(20_000);
    await expect(subjects(`id\n"${many}`, "csv")).rejects.toThrow(/the CSV cannot be read/);
  });

  it("CSV: the records before a broken one are read, wherever in the file it is", async () => {
    // Thousands of good rows in the same 64 KiB chunk as the bad one, then more.
    const good = Array.from({ length: 5_000 }, () => "110105198503121015");
    const path = join(data.dir, "broken-middle.csv");
    writeFileSync(path, `id\n${good.join("\n")}\n"bad"x\n${good.join("\n")}\n`);
    const read: Array<string | null> = [];
    await expect(
      (async () => {
        for await (const record of readSubjects(path, "PERSON", "csv")) read.push(record.subject);
      })(),
    ).rejects.toThrow("(line 5002)");
    expect(read).toHaveLength(5_000);
  });

  it("a record longer than 64 KiB is refused, not held in memory; a long subject is none", async () => {
    const huge = "a".repeat(MAX_RECORD_BYTES + 1);
    await expect(subjects(`{"id":"${huge}"}\n`, "ndjson")).rejects.toThrow(
      `line 1 is longer than ${MAX_RECORD_BYTES} bytes`,
    );
    await expect(subjects(`"110105198503121015"\n{"id":"${huge}"}`, "ndjson")).rejects.toThrow(
      "line 2 is longer",
    );
    await expect(subjects(`id\n${huge}\n`, "csv")).rejects.toBeInstanceOf(InputProblem);
    const long = "1".repeat(65);
    expect(await subjects(`{"id":"${long}"}\n"${"1".repeat(64)}"\r\n`, "ndjson")).toEqual([
      null,
      "1".repeat(64),
    ]);
    expect(await subjects(`id\n${long}\n`, "csv")).toEqual([null]);
  });
});

describe("a run whose input breaks", () => {
  it("writes, in order, the verdicts of what was read before the break, then fails with it; nothing after its file is closed", async () => {
    const output = join(data.dir, "broken-run.ndjson");
    async function* records() {
      for (let index = 0; index < 5; index++) yield { subject: `S${index}` };
      throw new InputProblem("line 7: broken");
    }
    const verified: string[][] = [];
    const run = runBatch({
      records: records(),
      output,
      skip: 0,
      batchSize: 2,
      concurrency: 3,
      withQuota: false,
      // Batches finish after the reading has failed, the first one last.
      verify: async (batch) => {
        verified.push(batch);
        await new Promise((resolve) => setTimeout(resolve, batch[0] === "S0" ? 60 : 20));
        const lines = batch.map((subject) =>
          formatResultLine({ subject, outcome: "ELIGIBLE", reasons: [], unavailable: [] }),
        );
        return {
          text: Buffer.from(lines.map((line) => `${line}\n`).join("")),
          outcomes: batch.map(() => ({ outcome: "ELIGIBLE", reasons: [] })),
        };
      },
    });
    await expect(run).rejects.toThrow("line 7: broken");
    expect(verified).toEqual([["S0", "S1"], ["S2", "S3"], ["S4"]]);
    const written = readFileSync(output, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line).subject);
    expect(written).toEqual(["S0", "S1", "S2", "S3", "S4"]);
  });
});

describe("result lines", () => {
  it("outcome and reasons are read back from a line, proof or not, whatever the subject holds", () => {
    const results = [
      { subject: 'A,"outcome":"ELIGIBLE","x', outcome: "INELIGIBLE", reasons: ["UNDERAGE"] },
      {
        subject: "B",
        outcome: "UNDETERMINED",
        reasons: [],
        unavailable: ["traffic"],
        proof: "a.b.c",
      },
      { subject: null, outcome: "INVALID", reasons: ["INVALID_ID"], quota: 0 },
      { subject: "王", outcome: "ELIGIBLE", reasons: [], quota: 3, proof: "x.y.z" },
    ];
    const text = results
      .map((result) => `${formatResultLine({ unavailable: [], ...result })}\n`)
      .join("");
    const lines = splitLines(Buffer.from(text));
    expect(lines.map(lineOutcome)).toEqual(
      results.map(({ outcome, reasons }) => ({ outcome, reasons })),
    );
    expect(() => splitLines(Buffer.from(`${text}{"subject"`))).toThrow("partial line");
    expect(() => lineOutcome(Buffer.from('{"subject":"A"}'))).toThrow("not a result line");
  });
});
