/** Per-request batching: subjects in one synchronous statement, other keys through a DataLoader. */
import { describe, expect, it } from "vitest";
import { groupByIndex, RequestLoaders, whenLoaded } from "../../common/loaders.ts";

/** A batch function that records every batch it is asked for. */
function recorder<V>(answer: (key: string) => V) {
  const batches: string[][] = [];
  const batch = (keys: readonly string[]) => {
    batches.push([...keys]);
    return keys.map(answer);
  };
  return { batches, batch };
}

describe("RequestLoaders", () => {
  it("loads a fact for every subject in one batch, answering synchronously", () => {
    const loaders = new RequestLoaders();
    const { batches, batch } = recorder((key) => key.length);
    loaders.addSubjects(["a", "bb", "ccc"]);
    expect(loaders.load("length", {}, "bb", batch)).toBe(2);
    expect(loaders.load("length", {}, "a", batch)).toBe(1);
    expect(loaders.load("length", {}, "ccc", batch)).toBe(3);
    expect(batches).toEqual([["a", "bb", "ccc"]]);
  });

  it("loads each argument set of a fact as its own batch", () => {
    const loaders = new RequestLoaders();
    const { batches, batch } = recorder((key) => key);
    loaders.addSubjects(["a", "b"]);
    const on = (day: string) => (key: string) =>
      loaders.load("fact", { on: day }, key, (keys) => batch(keys.map((k) => `${k}@${day}`)));
    expect([on("1")("a"), on("2")("a"), on("1")("b"), on("2")("b")]).toEqual([
      "a@1",
      "a@2",
      "b@1",
      "b@2",
    ]);
    expect(batches).toEqual([
      ["a@1", "b@1"],
      ["a@2", "b@2"],
    ]);
  });

  it("batches subjects declared later in a batch of their own", () => {
    const loaders = new RequestLoaders();
    const { batches, batch } = recorder((key) => key.toUpperCase());
    expect(loaders.loadAll("upper", {}, ["a", "b"], batch)).toEqual(["A", "B"]);
    loaders.addSubjects(["b", "c", "d"]);
    expect(loaders.load("upper", {}, "d", batch)).toBe("D");
    expect(loaders.load("upper", {}, "c", batch)).toBe("C");
    expect(batches).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]);
  });

  it("batches keys that are not subjects through a DataLoader, in one call per tick", async () => {
    const loaders = new RequestLoaders();
    const { batches, batch } = recorder((key) => `spouse of ${key}`);
    const answers = ["x", "y", "x"].map((key) => loaders.load("spouse", {}, key, batch));
    expect(answers.every((answer) => answer instanceof Promise)).toBe(true);
    expect(await Promise.all(answers)).toEqual(["spouse of x", "spouse of y", "spouse of x"]);
    expect(batches).toEqual([["x", "y"]]);
  });

  it("fails every key of a failed batch, without asking again", () => {
    const loaders = new RequestLoaders();
    let calls = 0;
    const failing = () => {
      calls++;
      throw new Error("database is locked");
    };
    loaders.addSubjects(["a", "b"]);
    expect(() => loaders.load("fact", {}, "a", failing)).toThrow("database is locked");
    expect(() => loaders.load("fact", {}, "b", failing)).toThrow("database is locked");
    expect(() => loaders.loadAll("fact", {}, ["a", "b"], failing)).toThrow("database is locked");
    expect(calls).toBe(1);
  });

  it("computes once per request for the same input object", () => {
    const loaders = new RequestLoaders();
    const ids = ["a", "b"];
    let calls = 0;
    const compute = () => {
      calls++;
      return ids.map((id) => id.toUpperCase());
    };
    const first = loaders.once(ids, compute);
    expect(loaders.once(ids, compute)).toBe(first);
    expect(loaders.once([...ids], compute)).toEqual(first);
    expect(calls).toBe(2);
  });
});

describe("argumentsOf", () => {
  it("prepares equal arguments once per request and field, and other values again", () => {
    const loaders = new RequestLoaders();
    let prepared = 0;
    const prefix = (args: { region: string; on?: string }) => {
      prepared++;
      return { prefix: args.region.slice(0, 2), on: args.on ?? null };
    };
    // A new object per entity, as graphql-jit passes them.
    const first = loaders.argumentsOf("f", { region: "110000", on: "2026-11-01" }, prefix);
    const again = loaders.argumentsOf("f", { region: "110000", on: "2026-11-01" }, prefix);
    expect(again).toBe(first);
    expect(prepared).toBe(1);
    expect(loaders.argumentsOf("f", { region: "120000", on: "2026-11-01" }, prefix)).toEqual({
      prefix: "12",
      on: "2026-11-01",
    });
    expect(loaders.argumentsOf("f", { region: "110000" }, prefix)).toEqual({
      prefix: "11",
      on: null,
    });
    expect(loaders.argumentsOf("g", { region: "110000" }, prefix)).toEqual({
      prefix: "11",
      on: null,
    });
    expect(prepared).toBe(4);
    expect(new RequestLoaders().argumentsOf("f", { region: "110000" }, prefix)).not.toBe(first);
  });

  it("does not remember arguments whose check failed", () => {
    const loaders = new RequestLoaders();
    let checked = 0;
    const check = (args: { region: string }) => {
      checked++;
      if (args.region.length !== 6) throw new Error("not a region");
      return { prefix: args.region };
    };
    expect(() => loaders.argumentsOf("f", { region: "11" }, check)).toThrow("not a region");
    expect(() => loaders.argumentsOf("f", { region: "11" }, check)).toThrow("not a region");
    expect(checked).toBe(2);
  });
});

describe("batch helpers", () => {
  it("groups rows by the position of their key", () => {
    expect(
      groupByIndex(3, [
        [0, "a"],
        [2, "b"],
        [0, "c"],
      ]),
    ).toEqual([
      [
        [0, "a"],
        [0, "c"],
      ],
      [],
      [[2, "b"]],
    ]);
  });

  it("applies a function to a value at once and to a promise when it settles", async () => {
    expect(whenLoaded(2, (n) => n + 1)).toBe(3);
    expect(await whenLoaded(Promise.resolve(2), (n) => n + 1)).toBe(3);
  });
});
