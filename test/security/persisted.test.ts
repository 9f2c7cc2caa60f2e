/**
 * The registered-operations file: applied whole, or refused naming the file and the place.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PersistedOperations } from "../../gateway/security/persisted.ts";
import { tempDataDir } from "../helpers.ts";

const data = tempDataDir();
afterAll(() => data.remove());

const BODY = "query Alive($id: ID!) { person(id: $id) { alive } }";
const ID = createHash("sha256").update(BODY).digest("hex");

function load(content: string): () => PersistedOperations {
  const file = join(data.dir, `operations-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, content);
  return () => PersistedOperations.fromFile(file);
}

describe("the registered-operations file", () => {
  it("reads an Apollo manifest and a map of sha256 → document", () => {
    const manifest = {
      format: "apollo-persisted-query-manifest",
      version: 1,
      operations: [{ id: ID, name: "Alive", type: "query", body: BODY }],
    };
    expect(load(JSON.stringify(manifest))().isRegistered(ID)).toBe(true);
    expect(load(JSON.stringify({ [ID]: BODY }))().isRegistered(ID)).toBe(true);
  });

  it("refuses what it cannot apply, naming the file and the place", () => {
    expect(load("{")).toThrow(
      /registered operations .*operations-.*\.json: cannot be read as JSON/,
    );
    expect(load("null")).toThrow("must be a manifest object");
    expect(load("[]")).toThrow("must be a manifest object");
    const manifest = { format: "apollo-persisted-query-manifest", version: 1 };
    expect(load(JSON.stringify({ ...manifest, version: 2 }))).toThrow("version 2 is not 1");
    expect(load(JSON.stringify({ ...manifest, operations: {} }))).toThrow(
      "operations must be a list",
    );
    expect(load(JSON.stringify({ ...manifest, operations: [null] }))).toThrow(
      "operations[0] must be an object",
    );
    expect(load(JSON.stringify({ [ID]: `${BODY} ` }))).toThrow("is not the sha256 of its document");
  });
});
