/**
 * The access ledger as a subgraph served inside the gateway: `myAccessLog`, a citizen's view of
 * who read their records. The caller must be a citizen (authorization already removed the field
 * for anyone else); the ledger is asked for that citizen's own identity number, never another.
 */
import { GraphQLError } from "graphql";
import { ErrorCode } from "../../common/errors.ts";
import type { GatewayRequestContext } from "../department-client.ts";
import type { LocalSubgraph, PlatformServices } from "../platform.ts";
import { AUDIT_UNAVAILABLE } from "../security/pipeline.ts";
import { LedgerUnavailable } from "./ledger.ts";

const OUTCOMES: Record<string, string> = {
  answered: "ANSWERED",
  partial: "PARTIAL",
  "not-found": "NOT_FOUND",
  failed: "FAILED",
};

function unreadableLog(error: unknown): never {
  if (!(error instanceof LedgerUnavailable)) throw error;
  throw new GraphQLError(
    "Your access log cannot be read right now (the audit ledger is busy or unavailable); retry later",
    { extensions: { code: AUDIT_UNAVAILABLE } },
  );
}

export function ledgerSubgraph(services: PlatformServices): LocalSubgraph {
  return {
    resolvers: {
      Query: {
        myAccessLog: async (
          _parent: unknown,
          { limit, before }: { limit: number; before?: number | null },
          context: GatewayRequestContext,
        ) => {
          const citizenId =
            context.principal.kind === "citizen" ? context.principal.citizenId : null;
          if (!citizenId) {
            throw new GraphQLError("myAccessLog answers citizen-authenticated requests only", {
              extensions: { code: ErrorCode.Forbidden },
            });
          }
          if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
            throw new GraphQLError('Argument "limit" is invalid: must be 1–1000', {
              extensions: { code: ErrorCode.BadUserInput, argument: "limit" },
            });
          }
          if (
            before !== undefined &&
            before !== null &&
            (!Number.isInteger(before) || before < 1)
          ) {
            throw new GraphQLError('Argument "before" is invalid: must be an entry number', {
              extensions: { code: ErrorCode.BadUserInput, argument: "before" },
            });
          }
          // Not a log without the latest accesses: those not yet in audit.db cannot be read.
          const entries = await services.ledger
            .entriesFor(citizenId, limit, before ?? undefined)
            .catch(unreadableLog);
          return entries.map((entry) => ({
            entry: entry.entry,
            at: entry.at,
            deskId: entry.deskId ?? "",
            desk: entry.desk ?? "",
            purpose: entry.purpose ?? "",
            legalBasis: entry.legalBasis,
            caseId: entry.caseId,
            facts: entry.fields,
            denied: entry.denied,
            departments: entry.departments,
            outcome: OUTCOMES[entry.outcome] ?? "FAILED",
            operationName: entry.operationName,
          }));
        },
      },
    },
  };
}
