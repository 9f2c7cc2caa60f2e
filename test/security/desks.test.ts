/**
 * The desk registry file: what an operator wrote is either applied as written or refused with
 * the file and the place named — never read half-way (a misspelt setting ignored, a string read
 * as false, a window that switches the rate limit off).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DeskRegistry, hashKey, unknownGrants } from "../../gateway/security/desks.ts";
import { tempDataDir } from "../helpers.ts";

const data = tempDataDir();
afterAll(() => data.remove());

const KEY = `sha256:${hashKey("a-long-random-key")}`;
const PURPOSE = { code: "housing", legalBasis: "Test suite.", scopes: ["hukou:region"] };

function registryOf(desk: Record<string, unknown>): () => DeskRegistry {
  const file = join(data.dir, `desks-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      desks: [{ id: "housing", name: "Housing", keys: [KEY], purposes: [PURPOSE], ...desk }],
    }),
  );
  return () => DeskRegistry.fromFile(file);
}

describe("the desk registry file", () => {
  it("applies a well-formed desk as written", () => {
    const registry = registryOf({
      persistedOperationsOnly: true,
      rateLimit: { max: 10, windowMs: 1000 },
      maxCost: 250_000,
    })();
    const desk = registry.desk("housing");
    expect(desk?.persistedOperationsOnly).toBe(true);
    expect(desk?.rateLimit).toEqual({ max: 10, windowMs: 1000 });
    expect(desk?.maxCost).toBe(250_000);
    expect(registryOf({})().desk("housing")?.maxCost).toBeNull();
  });

  it("refuses a misspelt setting instead of ignoring it", () => {
    expect(registryOf({ persistedOperationOnly: true })).toThrow(
      "desks[0].persistedOperationOnly: is not a setting",
    );
    expect(registryOf({ rateLimit: { max: 1, window: 60_000 } })).toThrow(
      "desks[0].rateLimit.window: is not a setting",
    );
  });

  it("refuses a switch written as a string", () => {
    expect(registryOf({ persistedOperationsOnly: "true" })).toThrow(
      "desks[0].persistedOperationsOnly: must be true or false",
    );
  });

  it("refuses a rate-limit window that would switch the limit off", () => {
    expect(registryOf({ rateLimit: { max: 1, windowMs: 0 } })).toThrow("windowMs");
    expect(registryOf({ rateLimit: { max: 1, windowMs: -5 } })).toThrow("windowMs");
  });

  it("refuses a cost budget that is not a whole number of at least 1", () => {
    for (const maxCost of [0, -1, 1.5, "1000", null]) {
      expect(registryOf({ maxCost })).toThrow("desks[0].maxCost: must be a whole number");
    }
  });

  it("refuses desk ids and scopes with spaces or other characters that hide in an audit log", () => {
    expect(registryOf({ id: "housing " })).toThrow("desks[0].id");
    expect(registryOf({ purposes: [{ ...PURPOSE, scopes: [" hukou:region"] }] })).toThrow(
      '" hukou:region" is not a scope name',
    );
  });

  it("names each granted scope the graph does not know, with the known ones of its area", () => {
    const registry = registryOf({
      purposes: [{ ...PURPOSE, scopes: ["hukou:regoin", "hukou:region", "taxes:vat", "*"] }],
    })();
    const known = new Set(["hukou:region", "hukou:status", "tax:vat"]);
    expect(unknownGrants(registry, known)).toEqual([
      'housing/housing grants "hukou:regoin" (hukou: scopes are hukou:region, hukou:status)',
      'housing/housing grants "taxes:vat"',
    ]);
    expect(unknownGrants(registryOf({})(), known)).toEqual([]);
  });
});
