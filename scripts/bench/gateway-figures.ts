/**
 * Where a measurement's requests spent their time, as mianzheng's gateway counts it at
 * `GET /metrics` (development serves it without a token): read before and after a measurement,
 * the difference says, per answered query, how long it took to prepare, to execute (the
 * departments' calls) and to record (completed, serialised, its accesses durable); how many
 * requests a department call served and how long it took; and how often, how long and for how
 * many records the audit journal was flushed. The closed loop serves its connections over the
 * mean latency, but a phase that waits (the flush) costs throughput only while the cores have
 * nothing else to do: under the batch load they have, and a shorter wait lengthens the others'.
 */

/** The counters read: Prometheus's text format, summed over every sample of a name and labels. */
type Samples = Map<string, number>;

export interface GatewayFigures {
  /** Mean time an answered query spent in each phase, ms. */
  phaseMs: { prepare: number; execute: number; record: number };
  /** Department calls: requests each served, mean round trip as the gateway saw it (ms). */
  departmentCalls: { perSecond: number; callers: number; meanMs: number };
  /** Journal flushes: how many a second, mean duration (ms), records each, share in the pool. */
  flushes: { perSecond: number; meanMs: number; records: number; inPool: number };
}

const PATTERN = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;

function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split("\n")) {
    const match = PATTERN.exec(line);
    if (!match) continue;
    const [, name, labels, value] = match;
    // Keyed by name alone and by name with each label: `mianzheng_audit_flush…_count` and
    // `…_count where="pool"`.
    const number = Number(value);
    const keys = [name as string];
    for (const [, key, label] of (labels ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      keys.push(`${name}{${key}="${label}"}`);
    }
    for (const key of keys) samples.set(key, (samples.get(key) ?? 0) + number);
  }
  return samples;
}

/** The gateway's counters now, or null when it serves none (the baselines). */
export async function readGatewayCounters(graphqlUrl: string): Promise<Samples | null> {
  try {
    const response = await fetch(graphqlUrl.replace(/\/graphql$/, "/metrics"));
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return parse(await response.text());
  } catch {
    return null;
  }
}

/** What happened between two readings `seconds` apart; null if either is missing or empty. */
export function gatewayFigures(
  before: Samples | null,
  after: Samples | null,
  seconds: number,
): GatewayFigures | null {
  if (!before || !after) return null;
  const grew = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const mean = (name: string, label = "") => {
    const count = grew(`${name}_count${label}`);
    return count > 0 ? grew(`${name}_sum${label}`) / count : 0;
  };
  const phase = (name: string) => 1000 * mean("mianzheng_query_phase_seconds", `{phase="${name}"}`);
  const queries = grew('mianzheng_query_phase_seconds_count{phase="execute"}');
  if (queries === 0) return null;
  const calls = grew("mianzheng_department_call_duration_seconds_count");
  const flushes = grew("mianzheng_audit_flush_duration_seconds_count");
  return {
    phaseMs: { prepare: phase("prepare"), execute: phase("execute"), record: phase("record") },
    departmentCalls: {
      perSecond: calls / seconds,
      callers: mean("mianzheng_department_call_callers"),
      meanMs: 1000 * mean("mianzheng_department_call_duration_seconds"),
    },
    flushes: {
      perSecond: flushes / seconds,
      meanMs: 1000 * mean("mianzheng_audit_flush_duration_seconds"),
      records: flushes > 0 ? grew("mianzheng_audit_records_total") / flushes : 0,
      inPool:
        flushes > 0
          ? grew('mianzheng_audit_flush_duration_seconds_count{where="pool"}') / flushes
          : 0,
    },
  };
}

/** One line: `time a query spent: prepare 0.04, execute 7.90, record 1.50 ms; …`. */
export function describeFigures(figures: GatewayFigures): string {
  const { phaseMs, departmentCalls, flushes } = figures;
  const flushed =
    flushes.perSecond > 0
      ? `; journal flushes ${Math.round(flushes.perSecond)}/s of ${flushes.records.toFixed(1)} records, ${flushes.meanMs.toFixed(2)} ms each${flushes.inPool > 0 ? ` (${(100 * flushes.inPool).toFixed(0)} % in the thread pool)` : ""}`
      : "";
  return `time a query spent: prepare ${phaseMs.prepare.toFixed(2)}, execute ${phaseMs.execute.toFixed(2)}, record ${phaseMs.record.toFixed(2)} ms; department calls ${departmentCalls.callers.toFixed(1)} requests each, ${departmentCalls.meanMs.toFixed(2)} ms${flushed}`;
}
