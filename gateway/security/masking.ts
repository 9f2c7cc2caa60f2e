/**
 * Minimal disclosure by default: to a desk whose purpose does not grant `identity:basic`, a
 * person's identity number and name appear masked by the rule of `common/masking.ts`
 * (`110105********1015`, `王*国`). The desk sent the full number, so it can still match each
 * answer to its applicant (answers come in the order asked), but the response it keeps is no
 * longer an identity document.
 */
import { maskName, maskPersonId } from "../../common/masking.ts";
import type { MaskedField } from "./authorization.ts";
import { forEachObjectAt } from "./operation-shape.ts";

const MASKS: Readonly<Record<string, (value: string) => string>> = {
  "Person.id": maskPersonId,
  "Person.name": maskName,
};

/** The mask of a field for desks without the identity scope, or null when it is shown as is. */
export function maskFor(coordinate: string): ((value: string) => string) | null {
  return MASKS[coordinate] ?? null;
}

export function applyMasks(data: unknown, masked: readonly MaskedField[]): void {
  for (const field of masked) {
    forEachObjectAt(data, field.parentPath, (object) => {
      const value = object[field.responseKey];
      if (typeof value === "string") object[field.responseKey] = field.mask(value);
    });
  }
}
