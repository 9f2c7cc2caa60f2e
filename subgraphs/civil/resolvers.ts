/** Resolvers of the marriage register's subgraph (`schema/civil.graphql`). */
import { dayArgument } from "../../common/arguments.ts";
import { whenLoaded } from "../../common/loaders.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import type { CivilStore, MarriageOfPerson } from "./store.ts";

export type MaritalStatus = "UNMARRIED" | "MARRIED" | "DIVORCED" | "WIDOWED";

/** Registered on or before `on` and not dissolved by then (a dissolution counts from its date). */
function inForceOn(marriage: MarriageOfPerson, on: string): boolean {
  return (
    marriage.registeredOn <= on && (marriage.dissolvedOn === null || marriage.dissolvedOn > on)
  );
}

/** The rule of records.md, restricted to what the register showed on `on`. */
export function maritalStatusOn(marriages: readonly MarriageOfPerson[], on: string): MaritalStatus {
  const registered = marriages.filter((marriage) => marriage.registeredOn <= on);
  if (registered.length === 0) return "UNMARRIED";
  if (registered.some((marriage) => inForceOn(marriage, on))) return "MARRIED";
  let latest = registered[0] as MarriageOfPerson;
  for (const marriage of registered) {
    const later =
      (marriage.dissolvedOn ?? "") > (latest.dissolvedOn ?? "") ||
      (marriage.dissolvedOn === latest.dissolvedOn && marriage.registeredOn > latest.registeredOn);
    if (later) latest = marriage;
  }
  return latest.dissolution === "DEATH" ? "WIDOWED" : "DIVORCED";
}

/** The spouse of the marriage in force on `on`; the latest registered should records overlap. */
export function spouseOn(marriages: readonly MarriageOfPerson[], on: string): string | null {
  const inForce = marriages.filter((marriage) => inForceOn(marriage, on));
  inForce.sort((x, y) => (x.registeredOn < y.registeredOn ? -1 : 1));
  return inForce.at(-1)?.spouseId ?? null;
}

/** The `on` argument checked once per request and argument set (RequestLoaders.argumentsOf). */
const onTheDay = (args: { on?: string | null }) => ({ on: dayArgument(args.on) });

export function civilResolvers(store: CivilStore) {
  // A person has few marriages: load them once per request and derive every fact (for any `on`)
  // from the same rows rather than one statement per fact and date.
  const marriagesOf = (id: string, context: SubgraphContext) =>
    context.loaders.load("marriages", {}, id, (keys) => store.marriages(keys));

  return {
    Person: {
      // Civil affairs contributes facts about persons; the household register owns them.
      __resolveReference: (reference: { id: string }) => reference,
      maritalStatus: (
        person: { id: string },
        args: { on?: string | null },
        context: SubgraphContext,
      ) => {
        const { on } = context.loaders.argumentsOf("maritalStatus", args, onTheDay);
        return whenLoaded(marriagesOf(person.id, context), (marriages) =>
          maritalStatusOn(marriages, on),
        );
      },
      spouse: (person: { id: string }, args: { on?: string | null }, context: SubgraphContext) => {
        const { on } = context.loaders.argumentsOf("spouse", args, onTheDay);
        return whenLoaded(marriagesOf(person.id, context), (marriages) => {
          const spouseId = spouseOn(marriages, on);
          return spouseId === null ? null : { id: spouseId };
        });
      },
      marriages: (person: { id: string }, _: unknown, context: SubgraphContext) =>
        marriagesOf(person.id, context),
    },
    Marriage: {
      spouse: (marriage: MarriageOfPerson) => ({ id: marriage.spouseId }),
    },
  };
}
