/**
 * The appender's request encoding is the one `verifyChain` checks: for any row, the remembered
 * literals and per-plan selections give the same text as `JSON.stringify(requestColumns(row))`,
 * so a ledger written with them verifies, and a change of any column changes the text. The same
 * for the journal's lines.
 */

import { hash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RecordEncoder } from "../../gateway/ledger/journal.ts";
import {
  contextDigest,
  RequestEncoder,
  type RequestRow,
  requestColumns,
  requestHash,
} from "../../gateway/ledger/store.ts";
import type { WireRecord } from "../../gateway/ledger/wire.ts";

const sha256 = (text: string) => hash("sha256", text, "hex");

/** Strings JSON must escape, or that look like what they are not. */
const AWKWARD = [
  "",
  'a "quoted" desk',
  "back\\slash",
  "tab\there, newline\nthere",
  "\u0000\u001f control",
  "北京市交通委员会 小客车指标",
  "lone surrogate \ud800 here",
  "emoji 🚗",
  "null",
  "[1,2]",
];

function row(index: number): RequestRow {
  const pick = (offset: number) => AWKWARD[(index + offset) % AWKWARD.length] as string;
  const maybe = (offset: number) => (index % (offset + 2) === 0 ? null : pick(offset));
  return {
    seq: index + 1,
    at: `2026-12-01T10:00:${String(index % 60).padStart(2, "0")}.000Z`,
    request_id: `req-${pick(1)}`,
    desk_id: maybe(2),
    desk_name: maybe(3),
    purpose: maybe(4),
    legal_basis: maybe(5),
    case_id: maybe(6),
    operation_name: maybe(7),
    operation_hash: "ab".repeat(32),
    departments: JSON.stringify(["hukou", pick(8)]),
    selections: JSON.stringify([{ fields: [`Person.${pick(9)}`], denied: [] }]),
  };
}

describe("RequestEncoder", () => {
  it("encodes every row as JSON.stringify(requestColumns(row)) does, remembered or not", () => {
    const encoder = new RequestEncoder();
    for (let index = 0; index < 200; index++) {
      const value = row(index);
      // Twice: the second encoding uses the remembered literals.
      expect(encoder.columns(value)).toBe(JSON.stringify(requestColumns(value)));
      expect(encoder.columns(value)).toBe(JSON.stringify(requestColumns(value)));
    }
  });

  it("encodes a context as its digest takes it, and the digest changes with any context column", () => {
    const encoder = new RequestEncoder();
    const value = row(5);
    const digest = contextDigest(value);
    expect(sha256(encoder.context(value))).toBe(digest);
    for (const column of Object.keys(value) as (keyof RequestRow)[]) {
      const changed = { ...value, [column]: column === "seq" ? 0 : `${value[column] ?? ""}x` };
      const own = ["seq", "at", "request_id", "case_id"].includes(column);
      // A request's own columns are not its context's.
      expect(contextDigest(changed) === digest, column).toBe(own);
      expect(sha256(encoder.context(changed))).toBe(contextDigest(changed));
    }
  });

  it("hashes to requestHash, and a changed column changes the text", () => {
    const encoder = new RequestEncoder();
    const value = row(3);
    const text = encoder.columns(value);
    for (const column of Object.keys(value) as (keyof RequestRow)[]) {
      const changed = {
        ...value,
        [column]: column === "seq" ? value.seq + 1 : `${value[column] ?? ""}x`,
      };
      expect(encoder.columns(changed), column).not.toBe(text);
      expect(encoder.columns(changed)).toBe(JSON.stringify(requestColumns(changed)));
    }
    expect(requestHash(value)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("gives each plan's selections their JSON, whether the arrays are shared or copies", () => {
    const encoder = new RequestEncoder();
    const fields = ["Person.name", 'Person."odd"'];
    const denied = ["Person.maritalStatus"];
    const one = [{ fields, denied }];
    expect(encoder.selections(one)).toBe(JSON.stringify(one));
    // The same arrays again (the plan's): the same text.
    expect(encoder.selections([{ fields, denied }])).toBe(JSON.stringify(one));
    // Other denied facts over the same fields, copies of the arrays, several selections.
    const other = [{ fields, denied: [] }];
    expect(encoder.selections(other)).toBe(JSON.stringify(other));
    const copies = [{ fields: [...fields], denied: [...denied] }];
    expect(encoder.selections(copies)).toBe(JSON.stringify(copies));
    const several = [
      { fields, denied },
      { fields: ["Organization.name"], denied: [] },
    ];
    expect(encoder.selections(several)).toBe(JSON.stringify(several));
    expect(encoder.selections([])).toBe("[]");
  });
});

/** A record's context as `JSON.stringify` writes it, fields in `RecordContext`'s order. */
function contextJson(record: WireRecord): string {
  return JSON.stringify({
    deskId: record.deskId,
    deskName: record.deskName,
    purpose: record.purpose,
    legalBasis: record.legalBasis,
    operationName: record.operationName,
    operationHash: record.operationHash,
    departments: record.departments,
    selections: record.selections,
  });
}

describe("RecordEncoder (journal lines)", () => {
  it("encodes every record and its context as JSON.stringify does", () => {
    const encoder = new RecordEncoder();
    for (let index = 0; index < 200; index++) {
      const value = row(index);
      const record: WireRecord = {
        at: value.at,
        requestId: value.request_id,
        deskId: value.desk_id,
        deskName: value.desk_name,
        purpose: value.purpose,
        legalBasis: value.legal_basis,
        caseId: value.case_id,
        operationName: value.operation_name,
        operationHash: value.operation_hash,
        departments: JSON.parse(value.departments) as string[],
        selections: JSON.parse(value.selections) as WireRecord["selections"],
        // Plain subjects most of the time; an awkward one now and then takes the general path.
        subjects:
          index % 7 === 0 ? `11010519900101001X\n${value.request_id}` : "11010519900101001X\nA1",
        picks: Uint16Array.from([0, index % 3]),
        outcomes: "ap",
      };
      const own = {
        at: record.at,
        requestId: record.requestId,
        context: "c0ffee",
        caseId: record.caseId,
        subjects: record.subjects,
        picks: Array.from(record.picks),
        outcomes: record.outcomes,
      };
      for (let twice = 0; twice < 2; twice++) {
        expect(encoder.context(record)).toBe(contextJson(record));
        expect(encoder.record(record, "c0ffee")).toBe(JSON.stringify(own));
      }
    }
  });

  it("gives a record the context text of the one before only when every context field is the same", () => {
    const encoder = new RecordEncoder();
    const fields = ["Person.name", "Person.hukou"];
    const base: WireRecord = {
      at: "2026-12-01T10:00:00.000Z",
      requestId: "req-1",
      deskId: "lottery",
      deskName: "小客车指标",
      purpose: "car-lottery",
      legalBasis: "basis",
      caseId: null,
      operationName: "Check",
      operationHash: "ab".repeat(32),
      departments: ["hukou", "traffic"],
      selections: [{ fields, denied: [] }],
      subjects: "11010519900101001X",
      picks: Uint16Array.from([0]),
      outcomes: "a",
    };
    const first = encoder.context(base);
    // Another request of the same desk and plan: new arrays of the same values, other own fields.
    const again: WireRecord = {
      ...base,
      requestId: "req-2",
      caseId: "case 7",
      departments: ["hukou", "traffic"],
      selections: [{ fields: [...fields], denied: [] }],
    };
    expect(encoder.context(again)).toBe(first);
    const changes: Partial<WireRecord>[] = [
      { deskId: "housing" },
      { deskName: null },
      { purpose: "demo" },
      { legalBasis: "other basis" },
      { operationName: null },
      { operationHash: "cd".repeat(32) },
      { departments: ["hukou", "tax"] },
      { departments: ["hukou"] },
      { selections: [{ fields, denied: ["Person.name"] }] },
      { selections: [{ fields: ["Person.name", "Person.tax"], denied: [] }] },
      {
        selections: [
          { fields, denied: [] },
          { fields: ["Organization.name"], denied: [] },
        ],
      },
    ];
    for (const change of changes) {
      const changed = { ...base, ...change };
      expect(encoder.context(changed), JSON.stringify(change)).toBe(contextJson(changed));
      expect(encoder.context(base)).toBe(contextJson(base));
    }
  });
});
