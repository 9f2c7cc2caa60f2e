/**
 * Verification as a service of the gateway: who may run which policy, the verdicts, and the
 * proofs signed over them. The GraphQL resolvers and the job runner both go through it.
 */
import { createHash } from "node:crypto";
import { todayInBeijing } from "../../common/clock.ts";
import { ErrorCode } from "../../common/errors.ts";
import { isCalendarDate } from "../../common/ids.ts";
import { maskPersonId, maskUscc } from "../../common/masking.ts";
import type { Policy } from "../../policies/policy.ts";
import { findPolicy } from "../../policies/registry.ts";
import type { GatewayRequestContext } from "../department-client.ts";
import { NO_LEDGER, type SubjectAccess } from "../ledger/ledger.ts";
import type { PlatformServices } from "../platform.ts";
import { hasScope, type Principal } from "../principal.ts";
import type { VerificationConfig } from "./config.ts";
import { isoSeconds, type Verdict, verifySubjects } from "./engine.ts";
import { ProofKeys } from "./keys.ts";
import { type PackedVerdicts, type ProofClaims, ProofSigner } from "./proofs.ts";

/** A refusal with a code a desk can branch on (turned into a GraphQL error or an HTTP status). */
export class VerificationRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly argument?: string,
  ) {
    super(message);
  }
}

/** What a proof is issued for: the verdict and the circumstances of the request. */
export interface ProofRequest {
  policy: Policy;
  verdict: Verdict;
  on: string;
  principal: Principal;
  /** Seconds since the epoch. */
  issuedAt: number;
}

export interface VerificationRun {
  policy: Policy;
  on: string;
  /** Seconds since the epoch: the pinned issue time, or when the verdicts were reached. */
  issuedAt: number;
  verdicts: Verdict[];
}

export class VerificationService {
  readonly keys: ProofKeys;
  private readonly signer: ProofSigner;

  constructor(
    private readonly services: PlatformServices,
    readonly config: VerificationConfig,
  ) {
    this.keys = new ProofKeys(config);
    this.signer = new ProofSigner(this.keys, config.signingThreads);
  }

  /** The policy, if it exists and the principal may run it. */
  authorize(policyName: string, principal: Principal): Policy {
    const policy = findPolicy(policyName);
    if (!policy) {
      throw new VerificationRefused(
        ErrorCode.BadUserInput,
        `Argument "policy" is invalid: no policy "${policyName}" (see Query.policies)`,
        "policy",
      );
    }
    if (!hasScope(principal, policy.scope)) {
      throw new VerificationRefused(
        ErrorCode.Forbidden,
        `The purpose ${principal.purpose ? `"${principal.purpose}" ` : ""}does not grant the scope "${policy.scope}"`,
      );
    }
    return policy;
  }

  /** The application date: the given one or today in Beijing. */
  applicationDate(on: string | null | undefined): string {
    if (on === null || on === undefined) return todayInBeijing();
    if (!isCalendarDate(on)) {
      throw new VerificationRefused(
        ErrorCode.BadUserInput,
        `Argument "on" is invalid: not a date YYYY-MM-DD`,
        "on",
      );
    }
    return on;
  }

  /**
   * A pinned issue time (ISO 8601, already normalised): not in the future, and recent enough that
   * its proofs are not already expired.
   */
  pinnedIssuedAt(issuedAt: string | null | undefined): number | null {
    if (issuedAt === null || issuedAt === undefined) return null;
    const at = Math.floor(Date.parse(issuedAt) / 1000);
    const now = Date.now() / 1000;
    if (Number.isNaN(at) || at > now + 60) {
      throw new VerificationRefused(
        ErrorCode.BadUserInput,
        `Argument "issuedAt" is invalid: in the future`,
        "issuedAt",
      );
    }
    if (at + this.config.proofTtlSeconds <= now) {
      throw new VerificationRefused(
        ErrorCode.BadUserInput,
        `Argument "issuedAt" is invalid: proofs issued then would already have expired`,
        "issuedAt",
      );
    }
    return at;
  }

  async verify(
    policy: Policy,
    subjects: readonly string[],
    on: string,
    context: GatewayRequestContext,
    pinnedIssuedAt: number | null = null,
  ): Promise<VerificationRun> {
    if (subjects.length > this.config.maxSubjects) {
      throw new VerificationRefused(
        ErrorCode.LimitExceeded,
        `At most ${this.config.maxSubjects} subjects per verify call (got ${subjects.length}); use npm run verify or POST /jobs for more`,
        "subjects",
      );
    }
    const verdicts = await verifySubjects({
      policy,
      subjects,
      on,
      context,
      execute: this.services.execute,
      batchSize: this.config.batchSize,
      asOf: pinnedIssuedAt === null ? null : isoSeconds(pinnedIssuedAt * 1000),
    });
    await this.recordAccess(policy, verdicts, context);
    this.services.verdicts.reached(
      policy.name,
      verdicts.map((verdict) => verdict.outcome),
    );
    return {
      policy,
      on,
      issuedAt: pinnedIssuedAt ?? Math.floor(Date.now() / 1000),
      verdicts,
    };
  }

  /** The signed proof of one verdict. */
  proof(request: ProofRequest): string {
    return this.signer.sign(this.claims(request));
  }

  /** The signed proofs of many verdicts, in order (signed off the event loop). */
  proofs(requests: readonly ProofRequest[]): Promise<string[]> {
    return this.signer.signMany(requests.map((request) => this.claims(request)));
  }

  /**
   * The NDJSON result lines of a run, as `npm run verify` writes them, with a proof on each line
   * when asked (signed and encoded by the signing threads): parts in order, each resolving to its
   * lines. Each proof states exactly what `proof()` states for the same verdict.
   */
  resultLines(run: VerificationRun, principal: Principal, withProofs: boolean): Promise<Buffer>[] {
    const { policy, issuedAt } = run;
    return this.signer.lines(
      {
        iss: this.config.issuer,
        policy: policy.name,
        policyVersion: policy.version,
        on: run.on,
        desk: principal.deskId,
        purpose: principal.purpose,
        caseId: principal.caseId || null,
        iat: issuedAt,
        exp: issuedAt + this.config.proofTtlSeconds,
      },
      this.pack(policy, run.verdicts, principal, withProofs),
      withProofs,
    );
  }

  /** Verdicts as the signing threads take them: lists verdicts share are sent once. */
  private pack(
    policy: Policy,
    verdicts: readonly Verdict[],
    principal: Principal,
    withProofs: boolean,
  ): PackedVerdicts {
    const count = verdicts.length;
    const lists: string[] = [];
    const index = new Map<string, number>();
    const intern = (text: string): number => {
      let at = index.get(text);
      if (at === undefined) {
        at = lists.push(text) - 1;
        index.set(text, at);
      }
      return at;
    };
    const empty = intern("[]");
    const listOf = (list: readonly string[]) =>
      list.length === 0 ? empty : intern(JSON.stringify(list));
    const byDepartments = new Map<Verdict["departments"], number>();
    const subjects = new Array<string>(count);
    const outcomes = new Array<string>(count);
    const reasons = new Uint32Array(count);
    const unavailable = new Uint32Array(count);
    const departments = new Uint32Array(count);
    const quotas = policy.quota === undefined ? null : new Float64Array(count);
    const masked =
      withProofs && !hasScope(principal, subjectScope(policy)) ? new Array<string>(count) : null;
    const mask = policy.subjectKind === "PERSON" ? maskPersonId : maskUscc;
    for (let at = 0; at < count; at++) {
      const verdict = verdicts[at] as Verdict;
      subjects[at] = verdict.subject;
      outcomes[at] = verdict.outcome;
      reasons[at] = listOf(verdict.reasons);
      unavailable[at] = listOf(verdict.unavailable);
      if (withProofs) {
        // Verdicts of a batch share their departments arrays (see the engine).
        let claim = byDepartments.get(verdict.departments);
        if (claim === undefined) {
          claim = intern(JSON.stringify(this.departmentsClaim(verdict.departments)));
          byDepartments.set(verdict.departments, claim);
        }
        departments[at] = claim;
        if (masked) masked[at] = mask(verdict.subject);
      }
      if (quotas) quotas[at] = verdict.quota ?? Number.NaN;
    }
    return {
      count,
      subjects,
      subs: masked,
      outcomes,
      lists,
      reasons,
      unavailable,
      departments,
      quotas,
    };
  }

  close(): Promise<void> {
    return this.signer.close();
  }

  /** Verdicts of a batch share their departments arrays (see the engine); so do their claims. */
  private readonly departmentClaims = new WeakMap<object, Record<string, string>>();

  private departmentsClaim(departments: Verdict["departments"]): Record<string, string> {
    let claim = this.departmentClaims.get(departments);
    if (!claim) {
      claim = Object.fromEntries(departments.map((d) => [d.department, d.asOf]));
      this.departmentClaims.set(departments, claim);
    }
    return claim;
  }

  claims({ policy, verdict, on, principal, issuedAt }: ProofRequest): ProofClaims {
    return {
      iss: this.config.issuer,
      sub: visibleSubject(policy, verdict.subject, principal),
      policy: policy.name,
      policyVersion: policy.version,
      on,
      outcome: verdict.outcome,
      reasons: verdict.reasons,
      unavailable: verdict.unavailable,
      ...(verdict.quota === null ? {} : { quota: verdict.quota }),
      departments: this.departmentsClaim(verdict.departments),
      desk: principal.deskId,
      purpose: principal.purpose,
      ...(principal.caseId ? { caseId: principal.caseId } : {}),
      iat: issuedAt,
      exp: issuedAt + this.config.proofTtlSeconds,
    };
  }

  /**
   * The access ledger: one entry per subject verified (malformed ones touch no record), with the
   * facts the policy consulted about it; the verdicts are returned only once it is durable. One
   * record per combination of departments that answered, so that a person's entry names the
   * departments asked about them — a person the register does not know was asked of no other.
   */
  private async recordAccess(
    policy: Policy,
    verdicts: readonly Verdict[],
    context: GatewayRequestContext,
  ): Promise<void> {
    // Security off: the ledger records nothing, so nothing is gathered for it.
    if (this.services.ledger === NO_LEDGER) return;
    // Verdicts of a batch share their departments arrays (see the engine): a group per array,
    // merged below when two arrays name the same departments.
    const groups = new Map<Verdict["departments"], SubjectAccess[]>();
    // One entry per person a request verifies, however often it names them: a thousand copies
    // of one number would otherwise push the person's earlier entries off the first page of
    // their log, and are one access (their verdicts are the same).
    const seen = new Set<string>();
    for (const verdict of verdicts) {
      if (verdict.outcome === "INVALID" || seen.has(verdict.subject)) continue;
      seen.add(verdict.subject);
      let group = groups.get(verdict.departments);
      if (!group) {
        group = [];
        groups.set(verdict.departments, group);
      }
      group.push({
        subject: verdict.subject,
        fields: this.factsConsulted(policy, verdict),
        denied: [],
        outcome:
          verdict.reasons[0] === "SUBJECT_NOT_FOUND"
            ? "not-found"
            : verdict.departments.length === 0
              ? "failed"
              : verdict.unavailable.length > 0
                ? "partial"
                : "answered",
      });
    }
    const records = new Map<string, { departments: string[]; subjects: SubjectAccess[] }>();
    for (const [answered, subjects] of groups) {
      const departments = answered.map((d) => d.department).sort();
      const key = departments.join(",");
      const record = records.get(key);
      if (!record) records.set(key, { departments, subjects });
      else for (const subject of subjects) record.subjects.push(subject);
    }
    await Promise.all(
      [...records.values()].map(({ departments, subjects }) =>
        this.services.ledger.append({
          principal: context.principal,
          requestId: context.requestId,
          operationName: `verify ${policy.name}`,
          operationHash: this.policyHash(policy),
          departments,
          subjects,
        }),
      ),
    );
  }

  /** Facts asked about a subject: those of the departments consulted (one array per combination). */
  private readonly facts = new Map<string, readonly string[]>();

  private factsConsulted(policy: Policy, verdict: Verdict): readonly string[] {
    const departments = [...verdict.departments.map((d) => d.department), ...verdict.unavailable];
    const key = `${policy.name}\u0000${departments.join(",")}`;
    let fields = this.facts.get(key);
    if (!fields) {
      const all = departments.flatMap((department) =>
        policy.stagePlans.flatMap((plan) => plan.fieldsByAlias[department] ?? []),
      );
      fields = [...new Set(all)];
      this.facts.set(key, fields);
    }
    return fields;
  }

  private readonly policyHashes = new Map<Policy, string>();

  /** Identifies the policy version in the ledger, as an operation hash identifies a document. */
  private policyHash(policy: Policy): string {
    let hash = this.policyHashes.get(policy);
    if (!hash) {
      hash = createHash("sha256")
        .update(
          JSON.stringify([policy.name, policy.version, policy.stages.map((s) => s.operation)]),
        )
        .digest("hex");
      this.policyHashes.set(policy, hash);
    }
    return hash;
  }
}

/** The scope under which a desk sees the policy's subjects unmasked. */
function subjectScope(policy: Policy): string {
  return policy.subjectKind === "PERSON" ? "identity:basic" : "market:organization";
}

/** The subject as the desk may see it: in full with the identity scope, masked otherwise. */
export function visibleSubject(policy: Policy, subject: string, principal: Principal): string {
  if (hasScope(principal, subjectScope(policy))) return subject;
  return policy.subjectKind === "PERSON" ? maskPersonId(subject) : maskUscc(subject);
}
