/**
 * Operational monitoring: what the gateway serves, how its departments answer and how its audit
 * ledger keeps up, in Prometheus's text format at `GET /metrics` — what X-Road's operational
 * monitoring gives a security server's owner, and what Apollo Router and Hive Gateway export.
 *
 * Labels are desks, departments, outcomes, policies and verdicts: sets the registries bound.
 * Never a subject, a case id or an operation's text; a desk's access to a person is the audit
 * ledger's to tell, not a time series anybody with the metrics token can read.
 *
 * The components take small observer interfaces (`DepartmentObserver`, `LedgerObserver`,
 * `VerdictObserver`), so that they neither import prom-client nor pay for it when unobserved.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { exposition } from "../common/metrics.ts";

/** The phases of a GraphQL query the gateway times (`mianzheng_query_phase_seconds`). */
export type QueryPhase = "prepare" | "execute" | "record";

/** What a department client reports of each call (one operation, its retries included). */
export interface DepartmentObserver {
  /** `callers`: the planner fetches of concurrent requests the call served (coalescing). */
  called(seconds: number, outcome: DepartmentOutcome, callers: number): void;
  retried(): void;
}

/**
 * `ok`: answered (with or without GraphQL errors); `failed`: no usable answer after the retries;
 * `circuit_open`: not called, the department failing lately.
 */
export type DepartmentOutcome = "ok" | "failed" | "circuit_open";

/** What the audit ledger reports of each group of records it makes durable. */
export interface LedgerObserver {
  /**
   * `where`: `loop` (flushed on the event loop, the requests waiting), `pool` (libuv's thread
   * pool, the disk slow lately) or `none` (`AUDIT_SYNC=normal`: written, not flushed, not timed).
   */
  durable(records: number, seconds: number, where: "loop" | "pool" | "none"): void;
}

/** What verification reports of each run's verdicts (a subject's each), online or in a job. */
export interface VerdictObserver {
  reached(policy: string, verdicts: Iterable<string>): void;
}

/** How long a scrape waits for the ledger's writer thread to say how far it is. */
const STATUS_WAIT_MS = 1_000;

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Finer than SECONDS at the short end: a query's phases take from microseconds to milliseconds. */
const PHASE_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
];
const FLUSH_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

export class GatewayMetrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<"route" | "desk" | "outcome">;
  private readonly requestSeconds: Histogram<"route" | "desk">;
  private readonly phases: Record<QueryPhase, Histogram.Internal<"phase">>;
  private readonly cost: Histogram<"desk">;
  private readonly departmentCalls: Counter<"department" | "outcome">;
  private readonly departmentSeconds: Histogram<"department">;
  private readonly departmentCallers: Histogram<"department">;
  private readonly departmentRetries: Counter<"department">;
  private readonly auditRecords: Counter;
  private readonly auditFlushSeconds: Histogram<"where">;
  private readonly verdicts: Counter<"policy" | "verdict">;

  constructor(state: {
    /** Whether each department's circuit is closed, read at each scrape. */
    departmentsUp: () => Record<string, boolean>;
    /** Whether the audit ledger accepts records (without it nothing is disclosed). */
    ledgerUp: () => boolean;
    /** audit.db's entries and those the subject index does not hold yet, read at each scrape. */
    ledgerStatus?: () => Promise<{ entries: number; unindexed: number }>;
  }) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "mianzheng_requests_total",
      help: "Requests answered, by route (/graphql, /verify/batch, /jobs…, /proofs/verify), desk (or citizen, open, anonymous) and outcome: ok, partial (data with errors), the error code that refused or failed it, or aborted (the client left before its answer was sent in full)",
      labelNames: ["route", "desk", "outcome"],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: "mianzheng_request_duration_seconds",
      help: "Time from a request's arrival to its answer, by route and desk",
      labelNames: ["route", "desk"],
      buckets: SECONDS,
      registers,
    });
    const phaseSeconds = new Histogram({
      name: "mianzheng_query_phase_seconds",
      help: "Where an answered GraphQL query's time went: prepare (arrival to the query plan: reading, authentication, validation, authorization, limits), execute (the query plan, cached after its first use, carried out: department calls, waiting for concurrent requests' answers, merging) and record (the answer completed, masked and serialised, and its accesses made durable in the audit ledger, a group of concurrent requests' at a time)",
      labelNames: ["phase"],
      buckets: PHASE_SECONDS,
      registers,
    });
    this.phases = {
      prepare: phaseSeconds.labels({ phase: "prepare" }),
      execute: phaseSeconds.labels({ phase: "execute" }),
      record: phaseSeconds.labels({ phase: "record" }),
    };
    this.cost = new Histogram({
      name: "mianzheng_operation_estimated_cost",
      help: "Estimated cost (demand control) of the operations accepted, by desk",
      labelNames: ["desk"],
      buckets: [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000],
      registers,
    });
    this.departmentCalls = new Counter({
      name: "mianzheng_department_calls_total",
      help: "Calls to departments (one operation, coalesced over concurrent requests), by outcome: ok, failed (after retries), circuit_open (not called)",
      labelNames: ["department", "outcome"],
      registers,
    });
    this.departmentSeconds = new Histogram({
      name: "mianzheng_department_call_duration_seconds",
      help: "Time a department call took, retries included, by department",
      labelNames: ["department"],
      buckets: SECONDS,
      registers,
    });
    this.departmentCallers = new Histogram({
      name: "mianzheng_department_call_callers",
      help: "Planner fetches of concurrent requests one department call served (coalescing)",
      labelNames: ["department"],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    });
    this.departmentRetries = new Counter({
      name: "mianzheng_department_retries_total",
      help: "Attempts at a department repeated after a failure that may pass",
      labelNames: ["department"],
      registers,
    });
    new Gauge({
      name: "mianzheng_department_up",
      help: "1 while a department's circuit is closed (no call failed lately), 0 while it fails fast",
      labelNames: ["department"],
      registers,
      collect() {
        for (const [department, up] of Object.entries(state.departmentsUp())) {
          this.set({ department }, up ? 1 : 0);
        }
      },
    });
    this.auditRecords = new Counter({
      name: "mianzheng_audit_records_total",
      help: "Access records made durable in the audit journal (one per request that touched a subject)",
      registers,
    });
    this.auditFlushSeconds = new Histogram({
      name: "mianzheng_audit_flush_duration_seconds",
      help: "Time to make a group of access records durable, by where: loop (the event loop waits), pool (libuv's threads, the disk slow lately); not observed with AUDIT_SYNC=normal, which does not flush",
      labelNames: ["where"],
      buckets: FLUSH_SECONDS,
      registers,
    });
    new Gauge({
      name: "mianzheng_audit_ledger_up",
      help: "1 while the audit ledger accepts records; at 0 the gateway discloses nothing",
      registers,
      collect() {
        this.set(state.ledgerUp() ? 1 : 0);
      },
    });
    this.verdicts = new Counter({
      name: "mianzheng_verification_verdicts_total",
      help: "Verdicts reached, online or in jobs, by policy and verdict",
      labelNames: ["policy", "verdict"],
      registers,
    });
    const { ledgerStatus } = state;
    if (ledgerStatus) {
      // One question to the writer thread per scrape, shared by both gauges.
      let asked: Promise<{ entries: number; unindexed: number } | null> | null = null;
      const read = () => {
        // A writer thread busy for long (an index chunk, another process's lock) must not hold
        // the scrape: after a second the gauges keep their last figures.
        asked ??= Promise.race([
          ledgerStatus().catch(() => null),
          new Promise<null>((resolve) => setTimeout(resolve, STATUS_WAIT_MS, null).unref()),
        ]).finally(() => setImmediate(() => (asked = null)));
        return asked;
      };
      const gauge = (name: string, help: string, pick: "entries" | "unindexed") =>
        new Gauge({
          name,
          help,
          registers,
          async collect() {
            // While the ledger cannot answer (`mianzheng_audit_ledger_up` 0), the last figure.
            const status = await read();
            if (status) this.set(status[pick]);
          },
        });
      gauge(
        "mianzheng_audit_entries",
        "Entries in audit.db (one per subject of each request)",
        "entries",
      );
      gauge(
        "mianzheng_audit_unindexed_entries",
        "Entries the subject index does not hold yet: a citizen's log scans them (the index is built when the ledger is quiet, or at once past 500,000 behind)",
        "unindexed",
      );
    }
  }

  /** One answered request of a counted route (`/graphql`, `/verify/batch`, `/jobs…`, `/proofs/verify`). */
  request(route: string, desk: string, outcome: string, seconds: number): void {
    this.requests.inc({ route, desk, outcome });
    this.requestSeconds.observe({ route, desk }, seconds);
  }

  /** The phases of a GraphQL query that was answered, seconds each. */
  queryPhases(prepare: number, execute: number, record: number): void {
    this.phases.prepare.observe(prepare);
    this.phases.execute.observe(execute);
    this.phases.record.observe(record);
  }

  /**
   * A request whose client closed its connection before its answer was sent in full: counted
   * with the outcome `aborted`, and no duration.
   */
  abandoned(route: string, desk: string): void {
    this.requests.inc({ route, desk, outcome: "aborted" });
  }

  estimatedCost(desk: string, cost: number): void {
    this.cost.observe({ desk }, cost);
  }

  department(department: string): DepartmentObserver {
    const seconds = this.departmentSeconds.labels({ department });
    const callers = this.departmentCallers.labels({ department });
    const retries = this.departmentRetries.labels({ department });
    const calls = {
      ok: this.departmentCalls.labels({ department, outcome: "ok" }),
      failed: this.departmentCalls.labels({ department, outcome: "failed" }),
      circuit_open: this.departmentCalls.labels({ department, outcome: "circuit_open" }),
    };
    return {
      called(elapsed, outcome, served) {
        calls[outcome].inc();
        if (outcome === "circuit_open") return;
        seconds.observe(elapsed);
        callers.observe(served);
      },
      retried() {
        retries.inc();
      },
    };
  }

  readonly ledger: LedgerObserver = {
    durable: (records, seconds, where) => {
      this.auditRecords.inc(records);
      // AUDIT_SYNC=normal writes without flushing: no flush to time.
      if (where !== "none") this.auditFlushSeconds.observe({ where }, seconds);
    },
  };

  readonly verification: VerdictObserver = {
    reached: (policy, verdicts) => {
      const counts = new Map<string, number>();
      for (const verdict of verdicts) counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
      for (const [verdict, count] of counts) this.verdicts.inc({ policy, verdict }, count);
    },
  };

  /** The exposition: this gateway's figures, then the process's. */
  text(): Promise<string> {
    return exposition(this.registry, "mianzheng_gateway_");
  }
}
