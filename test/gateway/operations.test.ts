/** Naming the argument a malformed literal was written for (gateway/operations.ts). */
import { type DocumentNode, Kind, parse, visit } from "graphql";
import { describe, expect, it } from "vitest";
import { argumentHolding } from "../../gateway/operations.ts";

/** The string literal with this value, wherever it is in the document. */
function literal(document: DocumentNode, value: string) {
  let found: unknown = null;
  visit(document, {
    StringValue(node) {
      if (node.value === value) found = node;
    },
  });
  if (!found) throw new Error(`no literal "${value}"`);
  return found as Parameters<typeof argumentHolding>[1];
}

describe("argumentHolding", () => {
  const document = parse(`{
    a(on: "d1", ids: ["x", "y", ["z"]], filter: { from: "f", nested: [{ to: "t" }] }) { b(at: "e") }
  }`);

  it("names an argument, a list element and an input field, at any depth", () => {
    expect(argumentHolding(document, literal(document, "d1"))).toBe("on");
    expect(argumentHolding(document, literal(document, "y"))).toBe("ids[1]");
    expect(argumentHolding(document, literal(document, "z"))).toBe("ids[2][0]");
    expect(argumentHolding(document, literal(document, "f"))).toBe("filter.from");
    expect(argumentHolding(document, literal(document, "t"))).toBe("filter.nested[0].to");
    expect(argumentHolding(document, literal(document, "e"))).toBe("at");
  });

  it("is null for a node no argument holds", () => {
    expect(argumentHolding(document, { kind: Kind.STRING, value: "elsewhere" })).toBeNull();
  });
});
