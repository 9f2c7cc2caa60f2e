/**
 * The subjects `npm run verify` and the job API read from an input file (CSV or NDJSON), and the
 * outcome read back from a result line for the tally.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  formatResultLine,
  type InputFormat,
  lineOutcome,
  readSubjects,
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
