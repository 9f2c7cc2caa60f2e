/** Resolvers of the market register's subgraph (`schema/market.graphql`). */
import { listArgument, regionArgument, usccArgument } from "../../common/arguments.ts";
import { regionOrCode } from "../../common/regions.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import type { MarketStore, OrganizationRow, OrganizationStatus } from "./store.ts";

export function marketResolvers(store: MarketStore) {
  const organizationBatch = (keys: readonly string[]) => store.organizations(keys);
  const organization = (uscc: string, context: SubgraphContext) =>
    context.loaders.load("organization", {}, uscc, organizationBatch);

  return {
    Query: {
      organization: (_: unknown, args: { uscc: string }, context: SubgraphContext) =>
        organization(usccArgument("uscc", args.uscc), context),
      organizations: (_: unknown, args: { usccs: string[] }, context: SubgraphContext) =>
        context.loaders.once(args.usccs, () =>
          context.loaders.loadAll(
            "organization",
            {},
            listArgument("usccs", args.usccs, usccArgument),
            organizationBatch,
          ),
        ),
    },
    Organization: {
      __resolveReference: (reference: { uscc: string }, context: SubgraphContext) =>
        organization(reference.uscc.toUpperCase(), context),
      active: (row: OrganizationRow) => row.status === "ACTIVE",
      region: (row: OrganizationRow) => regionOrCode(row.region),
      registeredWithin: (row: OrganizationRow, args: { region: string }) =>
        row.region.startsWith(regionArgument("region", args.region)),
      legalRepresentative: (row: OrganizationRow) => ({ id: row.legalRepresentativeId }),
    },
    Person: {
      // Market contributes facts about persons; the household register owns them.
      __resolveReference: (reference: { id: string }) => reference,
      legalRepresentativeOf: (
        person: { id: string },
        args: { status?: OrganizationStatus | null },
        context: SubgraphContext,
      ) => {
        const filter = args.status ?? null;
        return context.loaders.load("legalRepresentativeOf", { filter }, person.id, (keys) =>
          store.organizationsRepresentedBy(keys, filter),
        );
      },
    },
  };
}
