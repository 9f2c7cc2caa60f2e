/**
 * The benchmark's two workloads, shared by the orchestrator (which compares samples across
 * gateways) and the load generator (which sends them and checks every response).
 */

export type ScenarioName = "interactive" | "batch";

export interface Scenario {
  name: ScenarioName;
  /** What one request is worth in the table: a request, or the persons it asks about. */
  unit: "requests" | "persons";
  /** Ids per request. */
  idsPerRequest: number;
  connections: number;
  query: string;
  variables(ids: readonly string[]): Record<string, unknown>;
}

/** Lottery-style dates derived from the population's reference day D. */
export function lotteryDates(day: string) {
  const year = Number(day.slice(0, 4));
  const month = Number(day.slice(5, 7));
  // The month before D's month, and the 60 months that end with it.
  const upTo = month === 1 ? `${year - 1}-12` : `${year}-${String(month - 1).padStart(2, "0")}`;
  const fromIndex = year * 12 + (month - 1) - 60;
  const from = `${Math.floor(fromIndex / 12)}-${String((fromIndex % 12) + 1).padStart(2, "0")}`;
  return { day, upTo, from, fromYear: year - 5, toYear: year - 1 };
}

/** One person's facts from all six departments (the README's example, plus social and tax). */
export function interactiveScenario(day: string, connections = 32): Scenario {
  const d = lotteryDates(day);
  return {
    name: "interactive",
    unit: "requests",
    idsPerRequest: 1,
    connections,
    query: `query PersonFacts($id: ID!) {
  person(id: $id) {
    id
    name
    hukouRegion { code name }
    hasValidDriverLicense(on: "${d.day}")
    maritalStatus(on: "${d.day}")
    legalRepresentativeOf { uscc name }
    consecutiveInsuredMonths(region: "110000", upTo: "${d.upTo}", paidBy: "${d.day}")
    incomeTaxYears(region: "110000", fromYear: ${d.fromYear}, toYear: ${d.toYear}, paidBy: "${d.day}")
  }
}`,
    variables: (ids) => ({ id: ids[0] }),
  };
}

/** The lottery's facts for a batch of persons (`people(ids:)`), hukou, social, tax and traffic. */
export function batchScenario(day: string, connections = 4, size = 1000): Scenario {
  const d = lotteryDates(day);
  return {
    name: "batch",
    unit: "persons",
    idsPerRequest: size,
    connections,
    query: `query LotteryFacts($ids: [ID!]!) {
  people(ids: $ids) {
    id
    alive
    ageOn(on: "${d.day}")
    hukouWithin(region: "110000")
    workResidencePermit: hasValidResidencePermit(kind: WORK_RESIDENCE, region: "110000", on: "${d.day}")
    residencePermit: hasValidResidencePermit(kind: RESIDENCE, region: "110000", on: "${d.day}")
    insuredMonths(region: "110000", from: "${d.from}", to: "${d.upTo}", paidBy: "${d.day}")
    incomeTaxYears(region: "110000", fromYear: ${d.fromYear}, toYear: ${d.toYear}, paidBy: "${d.day}")
    hasValidDriverLicense(on: "${d.day}")
    ownsVehicle(kind: PASSENGER_CAR, region: "110000", on: "${d.day}")
  }
}`,
    variables: (ids) => ({ ids }),
  };
}

export function scenario(name: ScenarioName, day: string, quick = false): Scenario {
  return name === "interactive"
    ? interactiveScenario(day, quick ? 8 : 32)
    : batchScenario(day, quick ? 2 : 4, quick ? 200 : 1000);
}

/**
 * The `size` ids starting at position `start` of the shuffled list, wrapping around. Positions, not
 * request numbers: the samples, the warm-up and the measurement start at positions of their own, so
 * that each asks about other persons whatever the scenario's request size.
 */
export function idsAt(ids: readonly string[], start: number, size: number): string[] {
  const from = start % ids.length;
  const slice = ids.slice(from, from + size);
  return slice.length === size ? slice : [...slice, ...ids.slice(0, size - slice.length)];
}

/**
 * Whether a response body is a complete answer: data for every id asked, no error. Cheap enough to
 * run on every response under load (the full comparison across gateways runs on samples).
 */
export function completeAnswer(body: string, ids: readonly string[]): boolean {
  if (body.includes('"errors"')) return false;
  if (ids.length === 1) return body.includes(`"id":"${ids[0]}"`);
  let parsed: { data?: { people?: Array<{ id: string } | null> } };
  try {
    parsed = JSON.parse(body);
  } catch {
    return false;
  }
  const people = parsed.data?.people;
  return (
    Array.isArray(people) &&
    people.length === ids.length &&
    people.every((person, index) => person?.id === ids[index])
  );
}
