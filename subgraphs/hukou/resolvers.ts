/** Resolvers of the household register's subgraph (`schema/hukou.graphql`). */
import {
  dayArgument,
  listArgument,
  personIdArgument,
  regionArgument,
} from "../../common/arguments.ts";
import { whenLoaded } from "../../common/loaders.ts";
import { regionOrCode } from "../../common/regions.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import { ageOn } from "../../common/values.ts";
import type { HukouStore, PersonRow, ResidencePermitRow } from "./store.ts";

interface PermitFilter {
  [name: string]: unknown;
  kind: "RESIDENCE" | "WORK_RESIDENCE";
  region?: string | null;
  on?: string | null;
}

// Argument checks, run once per request and argument set (RequestLoaders.argumentsOf).
const onTheDay = (args: { on?: string | null }) => ({ on: dayArgument(args.on) });
const withinRegion = (args: { region: string }) => ({
  prefix: regionArgument("region", args.region),
});
const permitFilter = (args: PermitFilter) => ({
  kind: args.kind,
  // Only a region left out means everywhere: an empty string is a malformed region, as in the
  // other departments, not a silently widened check.
  prefix: args.region == null ? "" : regionArgument("region", args.region),
  on: dayArgument(args.on),
});

export function hukouResolvers(store: HukouStore) {
  const personBatch = (keys: readonly string[]) => store.persons(keys);
  const detailsBatch = (keys: readonly string[]) => store.details(keys);
  const permitsBatch = (keys: readonly string[]) => store.permits(keys);
  const parentsBatch = (keys: readonly string[]) => store.parentIds(keys);

  const person = (id: string, context: SubgraphContext) =>
    context.loaders.load("person", {}, id, personBatch);
  const permits = (id: string, context: SubgraphContext) =>
    context.loaders.load("permits", {}, id, permitsBatch);
  const detail = <K extends "name" | "ethnicity" | "hukouAddress">(
    row: PersonRow,
    context: SubgraphContext,
    field: K,
  ) =>
    whenLoaded(context.loaders.load("details", {}, row.id, detailsBatch), (details) =>
      details === null ? null : details[field],
    );

  return {
    Query: {
      person: (_: unknown, args: { id: string }, context: SubgraphContext) =>
        person(personIdArgument("id", args.id), context),
      people: (_: unknown, args: { ids: string[] }, context: SubgraphContext) =>
        context.loaders.once(args.ids, () =>
          context.loaders.loadAll(
            "person",
            {},
            listArgument("ids", args.ids, personIdArgument),
            personBatch,
          ),
        ),
    },
    Person: {
      __resolveReference: (reference: { id: string }, context: SubgraphContext) =>
        person(reference.id, context),
      name: (row: PersonRow, _: unknown, context: SubgraphContext) => detail(row, context, "name"),
      ethnicity: (row: PersonRow, _: unknown, context: SubgraphContext) =>
        detail(row, context, "ethnicity"),
      hukouAddress: (row: PersonRow, _: unknown, context: SubgraphContext) =>
        detail(row, context, "hukouAddress"),
      gender: (row: PersonRow) => (row.gender === "M" ? "MALE" : "FEMALE"),
      ageOn: (row: PersonRow, args: { on?: string | null }, context: SubgraphContext) => {
        const { on } = context.loaders.argumentsOf("ageOn", args, onTheDay);
        // Before birth: 0, not an error — an error would null the whole person (`Int!`), and a
        // policy would read a department that answered as one that did not (UNDETERMINED), where
        // "not yet of any age" is simply under every age limit.
        return on < row.birthDate ? 0 : ageOn(row.birthDate, on);
      },
      hukouRegion: (row: PersonRow) => regionOrCode(row.hukouRegion),
      hukouWithin: (row: PersonRow, args: { region: string }, context: SubgraphContext) =>
        row.hukouRegion.startsWith(
          context.loaders.argumentsOf("hukouWithin", args, withinRegion).prefix,
        ),
      isChildOf: (row: PersonRow, args: { parentId: string }, context: SubgraphContext) => {
        const parentId = personIdArgument("parentId", args.parentId);
        return whenLoaded(context.loaders.load("parents", {}, row.id, parentsBatch), (parents) =>
          parents.includes(parentId),
        );
      },
      hasValidResidencePermit: (row: PersonRow, args: PermitFilter, context: SubgraphContext) => {
        const { kind, prefix, on } = context.loaders.argumentsOf(
          "hasValidResidencePermit",
          args,
          permitFilter,
        );
        return whenLoaded(permits(row.id, context), (all) =>
          all.some(
            (permit) =>
              permit.kind === kind &&
              permit.region.startsWith(prefix) &&
              permit.validFrom <= on &&
              on <= permit.validTo,
          ),
        );
      },
      residencePermits: (
        row: PersonRow,
        args: { validOn?: string | null },
        context: SubgraphContext,
      ) => {
        const on = args.validOn;
        return whenLoaded(permits(row.id, context), (all) =>
          on ? all.filter((permit) => permit.validFrom <= on && on <= permit.validTo) : all,
        );
      },
    },
    ResidencePermit: {
      region: (permit: ResidencePermitRow) => regionOrCode(permit.region),
    },
  };
}
