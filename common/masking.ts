/**
 * Minimal disclosure: how identity numbers, credit codes and names appear to a desk whose purpose
 * does not grant the identity scope. The desk can still match a response to the subject it asked
 * about (it sent the full number), but the response is no longer an identity document.
 */

/** `110105198503121015` → `110105********1015`: region and the last four characters. */
export function maskPersonId(id: string): string {
  return id.length === 18 ? `${id.slice(0, 6)}********${id.slice(14)}` : "*".repeat(id.length);
}

/**
 * `110108198707081026` → `110108************`: only the region, for a person the desk did not name
 * itself (a spouse, a legal representative). The last four characters include the check
 * character, which leaves about one birth date in eleven: with a lookup that tells a registered
 * number from another, a few thousand guesses would give the whole number back.
 */
export function maskRelatedPersonId(id: string): string {
  return id.length === 18 ? `${id.slice(0, 6)}************` : "*".repeat(id.length);
}

/**
 * `91110105MA01ABC1XD` → `9111010********1XD`: the subject of an organisation policy's verdict and
 * proof, as the person policies' number is masked there. GraphQL answers show credit codes in
 * full: an organisation's code is public register data.
 */
export function maskUscc(code: string): string {
  return code.length === 18
    ? `${code.slice(0, 7)}********${code.slice(15)}`
    : "*".repeat(code.length);
}

/** `王建国` → `王*国`, `李娜` → `李*`, `欧阳建国` → `欧**国`: first and (for 3+) last character kept. */
export function maskName(name: string): string {
  const characters = [...name];
  if (characters.length <= 1) return "*";
  if (characters.length === 2) return `${characters[0]}*`;
  return `${characters[0]}${"*".repeat(characters.length - 2)}${characters[characters.length - 1]}`;
}
