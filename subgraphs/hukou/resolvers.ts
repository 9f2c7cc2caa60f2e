/** Resolvers of the household register's subgraph (`schema/hukou.graphql`). */
import {
  dayArgument,
  listArgument,
  personIdArgument,
  regionArgument,
} from "../../common/arguments.ts";
import { regionOrCode } from "../../common/regions.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import { ageOn } from "../../common/values.ts";
import type { HukouStore, PersonRow } from "./store.ts";

interface PermitFilter {
  kind: "RESIDENCE" | "WORK_RESIDENCE";
  region?: string | null;
  on?: string | null;
}

export function hukouResolvers(store: HukouStore) {
  const person = (id: string, context: SubgraphContext) =>
    context.loaders.load("person", {}, id, (keys) => store.persons(keys));
  const permits = (id: string, context: SubgraphContext) =>
    context.loaders.load("permits", {}, id, (keys) => store.permits(keys));

  return {
    Query: {
      person: (_: unknown, args: { id: string }, context: SubgraphContext) =>
        person(personIdArgument("id", args.id), context),
      people: (_: unknown, args: { ids: string[] }, context: SubgraphContext) =>
        Promise.all(
          listArgument("ids", args.ids, personIdArgument).map((id) => person(id, context)),
        ),
    },
    Person: {
      __resolveReference: (reference: { id: string }, context: SubgraphContext) =>
        person(reference.id, context),
      gender: (row: PersonRow) => (row.gender === "M" ? "MALE" : "FEMALE"),
      ageOn: (row: PersonRow, args: { on?: string | null }) =>
        ageOn(row.birthDate, dayArgument(args.on)),
      hukouRegion: (row: PersonRow) => regionOrCode(row.hukouRegion),
      hukouWithin: (row: PersonRow, args: { region: string }) =>
        row.hukouRegion.startsWith(regionArgument("region", args.region)),
      isChildOf: async (row: PersonRow, args: { parentId: string }, context: SubgraphContext) => {
        const parentId = personIdArgument("parentId", args.parentId);
        const parents = await context.loaders.load("parents", {}, row.id, (keys) =>
          store.parentIds(keys),
        );
        return parents.includes(parentId);
      },
      hasValidResidencePermit: async (
        row: PersonRow,
        args: PermitFilter,
        context: SubgraphContext,
      ) => {
        const prefix = args.region ? regionArgument("region", args.region) : "";
        const on = dayArgument(args.on);
        return (await permits(row.id, context)).some(
          (permit) =>
            permit.kind === args.kind &&
            permit.region.startsWith(prefix) &&
            permit.validFrom <= on &&
            on <= permit.validTo,
        );
      },
      residencePermits: async (
        row: PersonRow,
        args: { validOn?: string | null },
        context: SubgraphContext,
      ) => {
        const all = await permits(row.id, context);
        const on = args.validOn;
        return on ? all.filter((permit) => permit.validFrom <= on && on <= permit.validTo) : all;
      },
    },
    ResidencePermit: {
      region: (permit: { region: string }) => regionOrCode(permit.region),
    },
  };
}
