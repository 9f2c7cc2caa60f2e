/**
 * Composition of the department SDLs into the supergraph the gateway serves. The composed file is
 * checked in (`schema/supergraph.graphql`), so the gateway starts without introspecting anyone.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";
import { DEPARTMENTS, type Department, defaultPort } from "../common/departments.ts";
import { departmentSdl } from "../common/subgraph.ts";

export const SUPERGRAPH_PATH = fileURLToPath(
  new URL("../schema/supergraph.graphql", import.meta.url),
);

export type CompositionOutcome =
  | { ok: true; supergraphSdl: string; hints: string[] }
  | { ok: false; errors: Array<{ department: Department | null; message: string }> };

function departmentOf(message: string): Department | null {
  return DEPARTMENTS.find((code) => message.includes(`"${code}"`)) ?? null;
}

export function composeSupergraph(): CompositionOutcome {
  const services = [];
  for (const department of DEPARTMENTS) {
    try {
      services.push({
        name: department,
        url: `http://localhost:${defaultPort(department)}/graphql`,
        typeDefs: parse(departmentSdl(department), { noLocation: false }),
      });
    } catch (error) {
      return { ok: false, errors: [{ department, message: (error as Error).message }] };
    }
  }
  const result = composeServices(services);
  if (result.errors) {
    return {
      ok: false,
      errors: result.errors.map((error) => ({
        department: departmentOf(error.message),
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
