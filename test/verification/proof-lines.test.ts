/**
 * The result lines the signing threads encode (proof-lines.mjs) are byte for byte what
 * `formatResultLine` writes around the proof `VerificationService.proof` signs for the same verdict:
 * every shape of verdict, masked and unmasked subjects, a case id, text that JSON must escape,
 * quotas, one part or several, on the calling thread or on worker threads.
 */
import type { Worker } from "node:worker_threads";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import type { PlatformServices } from "../../gateway/platform.ts";
import { OPEN_PRINCIPAL, type Principal } from "../../gateway/principal.ts";
import { formatResultLine, lineOutcome, splitLines } from "../../gateway/verification/batch.ts";
import { verificationConfigFromEnv } from "../../gateway/verification/config.ts";
import type { Verdict } from "../../gateway/verification/engine.ts";
import { type VerificationRun, VerificationService } from "../../gateway/verification/service.ts";
import { findPolicy } from "../../policies/registry.ts";
import { tempDataDir } from "../helpers.ts";

const data = tempDataDir();
const services: VerificationService[] = [];
afterAll(async () => {
  await Promise.all(services.map((service) => service.close()));
  data.remove();
});

function service(signingThreads: number, issuer?: string): VerificationService {
  const created = new VerificationService(
    {} as PlatformServices,
    verificationConfigFromEnv(data.dir, {
      signingThreads,
      keysDir: `${data.dir}/keys`,
      ...(issuer ? { issuer } : {}),
    }),
  );
  services.push(created);
  return created;
}

const individual = findPolicy("beijing-car-lottery/individual");
const organization = findPolicy("beijing-car-lottery/organization");
if (!individual || !organization) throw new Error("policies missing");

const hukouAndTraffic = [
  { department: "hukou" as const, asOf: "2026-11-01T08:00:00Z" },
  { department: "traffic" as const, asOf: "2026-11-01T08:00:01Z" },
];
const none: Verdict["departments"] = [];

/** Verdicts of every shape, cycling through them. */
function verdicts(count: number, withQuota: boolean): Verdict[] {
  const shapes: Array<Omit<Verdict, "checkedAt" | "quota">> = [
    {
      subject: "110105198503121015",
      outcome: "ELIGIBLE",
      reasons: [],
      unavailable: [],
      departments: hukouAndTraffic,
    },
    {
      subject: "110106201209166774",
      outcome: "INELIGIBLE",
      reasons: ["UNDERAGE", "NO_VALID_DRIVER_LICENSE"],
      unavailable: [],
      departments: hukouAndTraffic,
    },
    {
      subject: "421071198509206054",
      outcome: "UNDETERMINED",
      reasons: [],
      unavailable: ["social", "tax"],
      departments: hukouAndTraffic,
    },
    {
      subject: 'NOT "AN" ID\\ 王\t\u2028',
      outcome: "INVALID",
      reasons: ["INVALID_ID"],
      unavailable: [],
      departments: none,
    },
    {
      subject: "110105198503121023",
      outcome: "INELIGIBLE",
      reasons: ["SUBJECT_NOT_FOUND"],
      unavailable: [],
      departments: [hukouAndTraffic[0] as Verdict["departments"][number]],
    },
  ];
  return Array.from({ length: count }, (_, index) => ({
    ...(shapes[index % shapes.length] as Verdict),
    checkedAt: "2026-11-01T08:00:02Z",
    quota: withQuota ? index % 7 : null,
  }));
}

const LOTTERY: Principal = {
  ...OPEN_PRINCIPAL,
  kind: "desk",
  deskId: "dev-lottery",
  purpose: "car-lottery",
  caseId: 'A-2026/11 "x"',
  scopes: new Set(["verify:beijing-car-lottery/individual"]),
};

/** The lines as formatResultLine writes them, with the proof `proof()` signs. */
function expected(
  verifier: VerificationService,
  run: VerificationRun,
  principal: Principal,
  withProofs: boolean,
): string {
  return run.verdicts
    .map(
      (verdict) =>
        `${formatResultLine({
          ...verdict,
          proof: withProofs
            ? verifier.proof({
                policy: run.policy,
                verdict,
                on: run.on,
                principal,
                issuedAt: run.issuedAt,
              })
            : null,
        })}\n`,
    )
    .join("");
}

async function encoded(
  verifier: VerificationService,
  run: VerificationRun,
  principal: Principal,
  withProofs: boolean,
): Promise<string> {
  return Buffer.concat(
    await Promise.all(verifier.resultLines(run, principal, withProofs)),
  ).toString();
}

describe("result lines encoded by the signing threads", () => {
  const cases = [
    { threads: 0, count: 40, principal: OPEN_PRINCIPAL, policy: individual },
    { threads: 1, count: 300, principal: LOTTERY, policy: individual },
    { threads: 2, count: 301, principal: LOTTERY, policy: individual },
    { threads: 2, count: 10, principal: OPEN_PRINCIPAL, policy: organization },
    { threads: 1, count: 200, principal: LOTTERY, policy: organization },
    // An issuer that is not ASCII: the claims are then UTF-8 whatever the subjects.
    { threads: 0, count: 20, principal: LOTTERY, policy: individual, issuer: "北京市免证平台" },
    { threads: 1, count: 20, principal: OPEN_PRINCIPAL, policy: individual, issuer: "免证" },
  ];
  for (const { threads, count, principal, policy, issuer } of cases) {
    it(`${count} ${policy.name} verdicts, ${threads} signing threads, ${principal.kind}${issuer ? `, issuer ${issuer}` : ""}`, async () => {
      const verifier = service(threads, issuer);
      const run: VerificationRun = {
        policy,
        on: "2026-11-01",
        issuedAt: 1_793_520_000,
        verdicts: verdicts(count, policy.quota !== undefined),
      };
      for (const withProofs of [true, false]) {
        const text = await encoded(verifier, run, principal, withProofs);
        expect(text).toBe(expected(verifier, run, principal, withProofs));
        const lines = splitLines(Buffer.from(text));
        expect(lines).toHaveLength(count);
        expect(lines.map(lineOutcome)).toEqual(
          run.verdicts.map(({ outcome, reasons }) => ({ outcome, reasons })),
        );
      }
    });
  }

  it("replaces a signing thread that stopped: the next batch is signed, not left waiting", async () => {
    const verifier = service(1);
    const run: VerificationRun = {
      policy: individual,
      on: "2026-11-01",
      issuedAt: 1_793_520_000,
      verdicts: verdicts(100, false),
    };
    const signed = await encoded(verifier, run, LOTTERY, true);
    // The thread ends as a crash would end it (private: only a test stops it).
    // biome-ignore lint/complexity/useLiteralKeys: private members
    const workers = verifier["signer"]["workers"] as unknown as Array<{ thread: Worker }>;
    expect(workers).toHaveLength(1);
    await (workers[0] as { thread: Worker }).thread.terminate();
    expect(await encoded(verifier, run, LOTTERY, true)).toBe(signed);
  });

  it("the proofs verify with jose against the published keys", async () => {
    const verifier = service(1);
    const run: VerificationRun = {
      policy: individual,
      on: "2026-11-01",
      issuedAt: Math.floor(Date.now() / 1000),
      verdicts: verdicts(100, false),
    };
    const keys = createLocalJWKSet({ keys: verifier.keys.publishedKeys() });
    const text = await encoded(verifier, run, LOTTERY, true);
    const lines = splitLines(Buffer.from(text));
    expect(lines).toHaveLength(run.verdicts.length);
    for (const [index, line] of lines.entries()) {
      const { proof } = JSON.parse(line.toString()) as { proof: string };
      const { payload, protectedHeader } = await jwtVerify(proof, keys, {
        algorithms: ["EdDSA"],
        typ: "verdict+jwt",
      });
      expect(protectedHeader.typ).toBe("verdict+jwt");
      const verdict = run.verdicts[index] as Verdict;
      expect(payload).toMatchObject({
        outcome: verdict.outcome,
        reasons: verdict.reasons,
        caseId: LOTTERY.caseId,
        desk: "dev-lottery",
      });
      // Without identity:basic the proof carries the subject masked.
      if (verdict.outcome !== "INVALID") expect(payload.sub).toMatch(/\*{8}/);
    }
  });
});
