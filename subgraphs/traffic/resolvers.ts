/** Resolvers of the traffic-management subgraph (`schema/traffic.graphql`). */
import { dayArgument, regionArgument } from "../../common/arguments.ts";
import { whenLoaded } from "../../common/loaders.ts";
import { regionOrCode } from "../../common/regions.ts";
import type { SubgraphContext } from "../../common/subgraph.ts";
import type { DriverLicenseRow, TrafficStore, VehicleKind, VehicleRow } from "./store.ts";

interface OwnershipArguments {
  [name: string]: unknown;
  kind?: VehicleKind | null;
  region?: string | null;
  on?: string | null;
}

interface VehicleListArguments {
  on?: string | null;
  kind?: VehicleKind | null;
}

function ownershipFilter(args: OwnershipArguments) {
  return {
    kind: args.kind ?? null,
    regionPrefix:
      args.region === undefined || args.region === null
        ? ""
        : regionArgument("region", args.region),
    on: dayArgument(args.on),
  };
}

function onTheDay(args: { on?: string | null }): { on: string } {
  return { on: dayArgument(args.on) };
}

/** Whether a licence makes its holder a licensed driver on `day`. */
function licenseValidOn(license: DriverLicenseRow, day: string): boolean {
  return license.status === "VALID" && license.issuedOn <= day && day <= license.validUntil;
}

export function trafficResolvers(store: TrafficStore) {
  // Persons and organisations share one owner column, so one loader (and one statement) per
  // argument set answers both kinds of owner in a request.
  const vehicleCount = (ownerId: string, args: OwnershipArguments, context: SubgraphContext) => {
    const filter = context.loaders.argumentsOf("vehicleCount", args, ownershipFilter);
    return context.loaders.load("vehicleCount", filter, ownerId, (keys) =>
      store.vehicleCounts(keys, filter),
    );
  };
  const vehiclesOf = (ownerId: string, args: VehicleListArguments, context: SubgraphContext) => {
    const filter = { kind: args.kind ?? null, on: args.on ?? null };
    return context.loaders.load("vehicles", filter, ownerId, (keys) =>
      store.vehicles(keys, filter),
    );
  };
  const ownerFields = <Owner>(ownerIdOf: (owner: Owner) => string) => ({
    ownsVehicle: (owner: Owner, args: OwnershipArguments, context: SubgraphContext) =>
      whenLoaded(vehicleCount(ownerIdOf(owner), args, context), (count) => count > 0),
    vehicleCount: (owner: Owner, args: OwnershipArguments, context: SubgraphContext) =>
      vehicleCount(ownerIdOf(owner), args, context),
    vehicles: (owner: Owner, args: VehicleListArguments, context: SubgraphContext) =>
      vehiclesOf(ownerIdOf(owner), args, context),
  });

  return {
    Person: {
      // Traffic contributes facts to persons owned by hukou: a reference is all it needs.
      __resolveReference: (reference: { id: string }) => reference,
      hasValidDriverLicense: (
        person: { id: string },
        args: { on?: string | null },
        context: SubgraphContext,
      ) => {
        const day = context.loaders.argumentsOf("hasValidDriverLicense", args, onTheDay);
        return context.loaders.load("hasValidDriverLicense", day, person.id, (keys) =>
          store.hasValidLicense(keys, day.on),
        );
      },
      driverLicenses: (person: { id: string }, _: unknown, context: SubgraphContext) =>
        context.loaders.load("driverLicenses", {}, person.id, (keys) => store.licenses(keys)),
      ...ownerFields((person: { id: string }) => person.id),
    },
    Organization: {
      __resolveReference: (reference: { uscc: string }) => reference,
      ...ownerFields((organization: { uscc: string }) => organization.uscc),
    },
    DriverLicense: {
      validOn: (license: DriverLicenseRow, args: { on?: string | null }) =>
        licenseValidOn(license, dayArgument(args.on)),
    },
    Vehicle: {
      region: (vehicle: VehicleRow) => regionOrCode(vehicle.region),
    },
  };
}
