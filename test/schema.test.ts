/** The checked-in supergraph is what the department SDLs compose to. */
import { describe, expect, it } from "vitest";
import { DEPARTMENTS } from "../common/departments.ts";
import { checkedInSupergraph, composeSupergraph } from "../gateway/compose.ts";
import { readSupergraph } from "../gateway/supergraph.ts";

describe("schema/supergraph.graphql", () => {
  const outcome = composeSupergraph();

  it("composes without errors", () => {
    expect(outcome.ok ? [] : outcome.errors).toEqual([]);
  });

  it("is current (run `npm run compose` after changing a department's SDL)", () => {
    expect(outcome.ok && outcome.supergraphSdl === checkedInSupergraph()).toBe(true);
  });

  it("names every department as a subgraph", () => {
    for (const department of DEPARTMENTS) {
      expect(checkedInSupergraph()).toContain(
        `${department.toUpperCase()} @join__graph(name: "${department}"`,
      );
    }
  });

  it("carries the departments' scope requirements", () => {
    const { scopes } = readSupergraph(checkedInSupergraph());
    expect(scopes.get("Person.name")).toEqual([["identity:basic"]]);
    expect(scopes.get("Person.hasValidDriverLicense")).toContainEqual(["traffic:license:validity"]);
  });
});
