/**
 * Composition of the department SDLs into the supergraph the gateway serves. The composed file is
 * checked in (`schema/supergraph.graphql`), so the gateway starts without introspecting anyone.
 */
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";
import {
  DEPARTMENTS,
  type Department,
  defaultPort,
  PLATFORM_SUBGRAPHS,
} from "../common/departments.ts";
import { subgraphSdl } from "../common/subgraph.ts";
import { SUPERGRAPH_PATH } from "./supergraph.ts";

export { SUPERGRAPH_PATH };

export type CompositionOutcome =
  | { ok: true; supergraphSdl: string; hints: string[] }
  | { ok: false; errors: Array<{ subgraph: string | null; message: string }> };

const SUBGRAPHS: readonly string[] = [...DEPARTMENTS, ...PLATFORM_SUBGRAPHS];

function subgraphOf(message: string): string | null {
  return SUBGRAPHS.find((name) => message.includes(`"${name}"`)) ?? null;
}

/** Where the supergraph says a subgraph lives; the gateway overrides it from its config. */
function defaultUrl(name: string): string {
  return (DEPARTMENTS as readonly string[]).includes(name)
    ? `http://localhost:${defaultPort(name as Department)}/graphql`
    : `http://gateway.local/${name}`;
}

export function composeSupergraph(): CompositionOutcome {
  const services = [];
  for (const name of SUBGRAPHS) {
    try {
      services.push({ name, url: defaultUrl(name), typeDefs: parse(subgraphSdl(name)) });
    } catch (error) {
      return { ok: false, errors: [{ subgraph: name, message: (error as Error).message }] };
    }
  }
  const result = composeServices(services);
  if (result.errors) {
    return {
      ok: false,
      errors: result.errors.map((error) => ({
        subgraph: subgraphOf(error.message),
        message: error.message,
      })),
    };
  }
  return {
    ok: true,
    supergraphSdl: `${result.supergraphSdl.trimEnd()}\n`,
    hints: result.hints.map((hint) => hint.toString()),
  };
}

export function checkedInSupergraph(): string {
  return readFileSync(SUPERGRAPH_PATH, "utf8");
}
