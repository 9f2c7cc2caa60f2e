/**
 * Verification as a subgraph served inside the gateway (`schema/verification.graphql`):
 * `Query.policies`, `Query.verify` with signed proofs, and next to /graphql the public keys
 * (`GET /.well-known/jwks.json`), the proof check (`POST /proofs/verify`), the batch endpoint of
 * `npm run verify` (`POST /verify/batch`) and the job API.
 */
import type { FastifyInstance } from "fastify";
import { GraphQLError, type GraphQLResolveInfo, Kind } from "graphql";
import { COMMON_REASONS, type Policy } from "../../policies/policy.ts";
import { POLICIES } from "../../policies/registry.ts";
import type { GatewayRequestContext } from "../department-client.ts";
import type { LocalSubgraph, PlatformServices } from "../platform.ts";
import { registerBatchRoute } from "./batch-route.ts";
import { verificationConfigFromEnv } from "./config.ts";
import type { Verdict } from "./engine.ts";
import {
  type AuthenticatedRouteOptions,
  deskAuthentication,
  JobRunner,
  registerJobRoutes,
} from "./jobs.ts";
import { verifyProof } from "./proofs.ts";
import { DateTimeScalar } from "./scalars.ts";
import { type ProofRequest, VerificationRefused, VerificationService } from "./service.ts";

function describePolicy(policy: Policy) {
  return {
    name: policy.name,
    version: policy.version,
    description: policy.description,
    subjectKind: policy.subjectKind,
    scope: policy.scope,
    departments: policy.departments,
    reasons: [
      ...Object.entries(COMMON_REASONS).map(([code, description]) => ({ code, description })),
      ...policy.requirements.map(({ reason, description }) => ({ code: reason, description })),
    ],
    operations: policy.stages.map((stage) => dedent(stage.operation)),
    grantsQuota: policy.quota !== undefined,
  };
}

function dedent(text: string): string {
  const lines = text.replace(/^\n+|\s+$/g, "").split("\n");
  const indent = Math.min(
    ...lines.filter((line) => line.trim()).map((line) => /^ */.exec(line)?.[0].length ?? 0),
  );
  return lines.map((line) => line.slice(indent)).join("\n");
}

function graphQLError(error: unknown): unknown {
  if (!(error instanceof VerificationRefused)) return error;
  return new GraphQLError(error.message, {
    extensions: {
      code: error.code,
      ...(error.argument ? { argument: error.argument } : {}),
    },
  });
}

type VerdictResult = Verdict & { proofRequest: ProofRequest; signed: string | null };

/** Whether the operation asks for `field` of the result (fragments count as asking). */
function selects(info: GraphQLResolveInfo, field: string): boolean {
  return info.fieldNodes.some((node) =>
    (node.selectionSet?.selections ?? []).some(
      (selection) => selection.kind !== Kind.FIELD || selection.name.value === field,
    ),
  );
}

export function verificationSubgraph(services: PlatformServices): LocalSubgraph {
  const service = new VerificationService(services, verificationConfigFromEnv(services.dataDir));
  const jobs = new JobRunner(service, services);

  return {
    resolvers: {
      DateTime: DateTimeScalar,
      Query: {
        policies: () => POLICIES.map(describePolicy),
        verify: async (
          _: unknown,
          args: {
            policy: string;
            subjects: string[];
            on?: string | null;
            issuedAt?: string | null;
          },
          context: GatewayRequestContext,
          info: GraphQLResolveInfo,
        ): Promise<VerdictResult[]> => {
          try {
            const policy = service.authorize(args.policy, context.principal);
            const on = service.applicationDate(args.on);
            const pinned = service.pinnedIssuedAt(args.issuedAt);
            const run = await service.verify(policy, args.subjects, on, context, pinned);
            const results: VerdictResult[] = run.verdicts.map((verdict) => ({
              ...verdict,
              proofRequest: {
                policy,
                verdict,
                on,
                principal: context.principal,
                issuedAt: run.issuedAt,
              },
              signed: null,
            }));
            if (selects(info, "proof")) {
              const proofs = await service.proofs(results.map((result) => result.proofRequest));
              results.forEach((result, index) => {
                result.signed = proofs[index] ?? null;
              });
            }
            return results;
          } catch (error) {
            throw graphQLError(error);
          }
        },
      },
      // Signed only when asked for: a batch run with --no-proofs costs no signatures.
      Verdict: {
        proof: (verdict: VerdictResult) => verdict.signed ?? service.proof(verdict.proofRequest),
      },
    },

    async register(app: FastifyInstance) {
      app.get("/.well-known/jwks.json", async (_request, reply) =>
        reply
          .header("cache-control", "public, max-age=300")
          .type("application/jwk-set+json")
          .send({ keys: service.keys.publishedKeys() }),
      );

      // Public: a clerk, an applicant or another agency checks a proof without any account.
      app.post("/proofs/verify", async (request, reply) => {
        const body = request.body;
        const token =
          typeof body === "string"
            ? body
            : body &&
                typeof body === "object" &&
                typeof (body as { proof?: unknown }).proof === "string"
              ? (body as { proof: string }).proof
              : null;
        if (token === null) {
          return reply.code(400).send({
            errors: [
              {
                message: 'Send {"proof": "<compact JWS>"} as JSON, or the proof as text/plain',
                extensions: { code: "BAD_USER_INPUT" },
              },
            ],
          });
        }
        const check = await verifyProof(token, { keys: service.keys.publishedKeys() });
        return reply.send(check);
      });

      // The gateway's authentication for /graphql when it offers it to platform routes, else the
      // same desk registry checked here.
      const authenticated =
        (
          services as PlatformServices & { routeOptions?: () => AuthenticatedRouteOptions }
        ).routeOptions?.() ?? deskAuthentication(services.config);
      await registerJobRoutes(app, jobs, authenticated);
      const { security } = services.config;
      registerBatchRoute(app, service, authenticated, {
        open: !security.enabled,
        maxListSize: security.enabled ? security.limits.maxListSize : null,
      });
      jobs.resumeUnfinished();
    },

    close: async () => {
      await jobs.close();
      await service.close();
    },
  };
}
