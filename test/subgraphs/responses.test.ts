/**
 * How departments write their answers: large ones in pieces into reused buffers, every byte as
 * JSON.stringify would have written it, with the JSON content type and the right length.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePersonId } from "../../common/ids.ts";
import { jsonPieces, ResponseBuffers } from "../../common/json-response.ts";
import { buildHukouSubgraph } from "../../subgraphs/hukou/index.ts";
import { inject, tempDataDir, writeRecords } from "../helpers.ts";

describe("jsonPieces", () => {
  const values: unknown[] = [
    { data: null },
    { data: { people: [] } },
    { data: { people: [null, { id: "1", n: 1.5, ok: true }], count: 3, name: '张伟 \u2028 "q"' } },
    { data: { list: [undefined, () => 1, Symbol("s"), Number.NaN, -0, [1, [2, [3]]]] } },
    { data: { skipped: undefined, fn: () => 1, at: new Date(0), nested: { deep: [{ a: [1] }] } } },
    {
      data: {
        many: Array.from({ length: 500 }, (_, i) => ({ i, text: "x".repeat(i % 37), none: null })),
        more: Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? null : [i, `${i}`])),
      },
    },
    ["a", { b: [1, 2] }],
    "plain",
  ];

  it("joins to exactly JSON.stringify's text, at any piece size", () => {
    for (const value of values) {
      for (const pieceChars of [1, 7, 64, 1024, 32 * 1024]) {
        const pieces = jsonPieces(value, pieceChars);
        expect(pieces.join("")).toBe(JSON.stringify(value));
      }
    }
  });

  it("keeps pieces near their size, so no piece of a large answer is a large string", () => {
    const large = values[5];
    const pieces = jsonPieces(large, 4096);
    expect(pieces.length).toBeGreaterThan(3);
    for (const piece of pieces) expect(piece.length).toBeLessThan(3 * 4096);
  });
});

describe("ResponseBuffers", () => {
  it("hands a buffer out again only once it has been given back", () => {
    // Identity compared as booleans: vitest would compare unequal buffers byte by byte.
    const buffers = new ResponseBuffers(2);
    const first = buffers.take(300_000);
    expect(first.length).toBeGreaterThanOrEqual(300_000);
    expect(buffers.take(1000) === first).toBe(false);
    buffers.give(first);
    expect(buffers.take(200_000) === first).toBe(true);
    expect(buffers.take(200_000) === first).toBe(false);
    const huge = buffers.take(20_000_000);
    buffers.give(huge);
    expect(buffers.take(20_000_000) === huge).toBe(false);
  });
});

describe("large answers over HTTP", () => {
  const data = tempDataDir();
  let app: FastifyInstance;
  let url: string;
  // One person born on each day from 1950 on.
  const ids = Array.from({ length: 2500 }, (_, i) =>
    makePersonId("110105", new Date(Date.UTC(1950, 0, 1 + i)).toISOString().slice(0, 10), 123),
  );

  beforeAll(async () => {
    writeRecords(
      "hukou",
      data.dir,
      ids.map((id, i) => ({
        kind: "person",
        id,
        name: `测试人员${i}号`,
        gender: (id.charCodeAt(16) - 48) % 2 === 1 ? "M" : "F",
        birthDate: `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`,
        hukouRegion: "110105",
        hukouAddress: `朝阳区建国路${i}号`,
        status: "ALIVE",
      })),
    );
    app = await buildHukouSubgraph({ dataDir: data.dir, logger: false, requireSignature: false });
    url = `${await app.listen({ port: 0, host: "127.0.0.1" })}/graphql`;
  });

  afterAll(async () => {
    await app?.close();
    data.remove();
  });

  const query = /* GraphQL */ `
    query ($ids: [ID!]!) {
      people(ids: $ids) { id name hukouAddress birthDate hukouRegion { name } }
    }
  `;

  it("answers concurrent large batches intact, as JSON with their exact length", async () => {
    // Different sizes, several rounds: buffers of earlier answers are reused for later ones.
    const batches = [2500, 900, 2000, 1500, 2500, 1200].map((size, n) =>
      ids.slice((n * 397) % 500, ((n * 397) % 500) + size),
    );
    let largest = 0;
    for (let round = 0; round < 3; round++) {
      const responses = await Promise.all(
        batches.map(async (batch) => {
          const response = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ query, variables: { ids: batch } }),
          });
          return { batch, response, text: await response.text() };
        }),
      );
      for (const { batch, response, text } of responses) {
        expect(response.status).toBe(200);
        expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
        expect(Number(response.headers.get("content-length"))).toBe(Buffer.byteLength(text));
        const people = (JSON.parse(text) as { data: { people: Array<{ id: string }> } }).data
          .people;
        expect(people.map((person) => person.id)).toEqual(batch);
        expect(text).toBe(JSON.stringify(JSON.parse(text)));
        largest = Math.max(largest, Buffer.byteLength(text));
      }
    }
    // Over 128 KiB: answers in the size range whose single strings used to cost page faults.
    expect(largest).toBeGreaterThan(128 * 1024);
  });

  it("writes errors and small answers as before", async () => {
    const bad = await inject(app, query, { ids: [ids[0], "123"] });
    expect(bad.data).toBeNull();
    expect(bad.errors?.[0]?.path).toEqual(["people"]);
    const small = await app.inject({
      method: "POST",
      url: "/graphql",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ query, variables: { ids: ids.slice(0, 2) } }),
    });
    expect(small.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(small.body).toBe(JSON.stringify(small.json()));
  });
});
