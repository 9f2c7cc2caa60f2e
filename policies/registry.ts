/**
 * Every policy the platform runs, by name. A new policy is one file under `policies/` (see
 * `policies/README.md`) and one line here.
 */
import individualCarLottery from "./beijing-car-lottery/individual.ts";
import organizationCarLottery from "./beijing-car-lottery/organization.ts";
import type { Policy } from "./policy.ts";

export const POLICIES: readonly Policy[] = [
  individualCarLottery as unknown as Policy,
  organizationCarLottery as unknown as Policy,
];

const byName = new Map(POLICIES.map((policy) => [policy.name, policy]));
if (byName.size !== POLICIES.length) throw new Error("two policies share a name");

export function findPolicy(name: string): Policy | undefined {
  return byName.get(name);
}
