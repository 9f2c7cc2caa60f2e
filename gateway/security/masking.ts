/**
 * Minimal disclosure by default: to a desk whose purpose does not grant `identity:basic`, a
 * person's identity number appears masked by the rule of `common/masking.ts`
 * (`110105********1015`). (Names need `identity:basic` themselves and are withheld from such a
 * desk; their mask, `王*国`, applies should a department let a narrower scope read them.) The
 * desk sent the full number, so it can still match each
 * answer to its applicant (answers come in the order asked), but the response it keeps is no
 * longer an identity document. A person the desk reached through another (a spouse, a legal
 * representative) shows only the region of their number (`110108************`).
 */
import { maskName, maskPersonId, maskRelatedPersonId } from "../../common/masking.ts";
import type { MaskedField } from "./authorization.ts";
import { forEachObjectAt } from "./operation-shape.ts";

const MASKS: Readonly<Record<string, (value: string) => string>> = {
  "Person.id": maskPersonId,
  "Person.name": maskName,
  // A driving licence's number is its holder's identity number (GB 11643, as traffic registers
  // it): shown in full, it would give back every number the masks above hide.
  "DriverLicense.number": maskPersonId,
};

/** For a person the desk reached through another (a spouse): the number's region only. */
const RELATED_MASKS: Readonly<Record<string, (value: string) => string>> = {
  ...MASKS,
  "Person.id": maskRelatedPersonId,
  "DriverLicense.number": maskRelatedPersonId,
};

/**
 * The mask of a field for desks without the identity scope, or null when it is shown as is.
 * `related`: the field belongs to a subject the desk did not name in its request.
 */
export function maskFor(coordinate: string, related = false): ((value: string) => string) | null {
  return (related ? RELATED_MASKS : MASKS)[coordinate] ?? null;
}

export function applyMasks(data: unknown, masked: readonly MaskedField[]): void {
  for (const field of masked) {
    forEachObjectAt(data, field.parentPath, (object) => {
      const value = object[field.responseKey];
      if (typeof value === "string") object[field.responseKey] = field.mask(value);
    });
  }
}
