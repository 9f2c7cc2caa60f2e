/**
 * The job API, for desks that cannot run the CLI: `POST /jobs?policy=…&on=…` uploads a CSV or
 * NDJSON file of subjects, `GET /jobs/:id` tells its progress, `GET /jobs/:id/results` streams the
 * NDJSON results (following the job until it ends), `POST /jobs/:id/recheck` verifies a finished
 * job's UNDETERMINED subjects again in a new job (the CLI's `--only-undetermined`). Jobs run one after another inside the gateway,
 * verified in-process, and are kept under `DATA_DIR/jobs/<id>/` (`job.json`, the upload, the
 * results), so that a job interrupted by a restart resumes where it stopped.
 */
import { randomUUID } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from "fastify";
import { ErrorCode } from "../../common/errors.ts";
import { syncPath } from "../../common/files.ts";
import { ProcessClaims } from "../../common/processes.ts";
import type { GatewayConfig } from "../config.ts";
import { requestContext } from "../department-client.ts";
import type { PlatformServices } from "../platform.ts";
import { OPEN_PRINCIPAL, type Principal } from "../principal.ts";
import { AuthenticationFailure, Authenticator } from "../security/authentication.ts";
import { DeskRegistry } from "../security/desks.ts";
import { LedgerUnavailable } from "../security/pipeline.ts";
import {
  countRecords,
  detectFormat,
  formatOfMediaType,
  type InputFormat,
  InputProblem,
  inputProblem,
  readPreviousResults,
  readSubjects,
  resumeOutput,
  runBatch,
  Tally,
} from "./batch.ts";
import { VerificationRefused, type VerificationService } from "./service.ts";

export type JobStatus = "queued" | "running" | "done" | "failed";

/** The principal a job runs for, as stored (never the desk's key). */
interface StoredPrincipal {
  kind: Principal["kind"];
  deskId: string | null;
  deskName: string | null;
  purpose: string | null;
  legalBasis: string | null;
  caseId: string | null;
  scopes: string[];
}

export interface Job {
  id: string;
  policy: string;
  on: string;
  /** Seconds since the epoch: every proof of the job is issued at this time. */
  issuedAt: number;
  proofs: boolean;
  format: InputFormat;
  status: JobStatus;
  createdAt: string;
  finishedAt: string | null;
  total: number;
  done: number;
  counts: ReturnType<Tally["toJSON"]>;
  error: string | null;
  principal: StoredPrincipal;
  /**
   * The job whose results this one verifies again: its UNDETERMINED lines are verified anew, the
   * others copied as they are (absent in jobs written before rechecks existed).
   */
  recheckOf?: string | null;
  /** The latest job checking this one's UNDETERMINED verdicts again. */
  recheck?: string | null;
}

/** A request the job's state does not allow (HTTP 409), e.g. rechecking a job still running. */
export class JobConflict extends Error {}

const JOB_ID = /^[0-9a-f-]{36}$/;

/** Route options that authenticate a request as /graphql does (desk key or token, purpose). */
export type AuthenticatedRouteOptions = Pick<RouteShorthandOptions, "onRequest" | "config">;

/**
 * Authentication for the job routes when the gateway does not hand its own route options to
 * platform routes: the same desk registry and rules as /graphql (without its rate limit).
 */
export function deskAuthentication(config: GatewayConfig): AuthenticatedRouteOptions {
  if (!config.security.enabled) return {};
  const authenticator = new Authenticator(
    DeskRegistry.fromFile(config.security.desksFile),
    config.security,
  );
  return {
    onRequest: async (request, reply) => {
      try {
        request.principal = await authenticator.authenticate(request.headers);
      } catch (error) {
        if (!(error instanceof AuthenticationFailure)) throw error;
        if (error.status === 401) reply.header("www-authenticate", 'Bearer realm="mianzheng"');
        return sendError(reply, error.status, error.code, error.message);
      }
    },
  };
}

export class JobRunner {
  private readonly dir: string;
  private readonly queue: string[] = [];
  private running: Promise<void> | null = null;
  private readonly controller = new AbortController();
  /** Who runs which job, opened with the first job this process runs. */
  private claims: ProcessClaims | null = null;
  /** Listeners waiting for more results of a running job. */
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    readonly service: VerificationService,
    private readonly services: PlatformServices,
  ) {
    this.dir = service.config.jobsDir;
  }

  /** Whether requests without an established principal are served (security off). */
  get open(): boolean {
    return !this.services.config.security.enabled;
  }

  jobDir(id: string): string {
    return join(this.dir, id);
  }

  /** The job, or null when there is none — or its job.json cannot be read (logged). */
  read(id: string): Job | null {
    if (!JOB_ID.test(id)) return null;
    const file = join(this.jobDir(id), "job.json");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
    try {
      return JSON.parse(text) as Job;
    } catch (error) {
      // job.json is replaced by a rename, so only a damaged disk or a hand edit leaves it broken:
      // the job is left alone (its upload and results stay) rather than stop the gateway.
      this.services.log.error({ err: error, job: id, file }, "a job's job.json cannot be read");
      return null;
    }
  }

  /**
   * Replaces job.json whole (a rename). `durable`: flushed, with the folder, before returning —
   * for a job being accepted, whose 202 promises that it will run.
   */
  private write(job: Job, durable = false): void {
    const file = join(this.jobDir(job.id), "job.json");
    writeFileSync(`${file}.tmp`, `${JSON.stringify(job, null, 2)}\n`);
    if (durable) syncPath(`${file}.tmp`);
    renameSync(`${file}.tmp`, file);
    if (durable) syncPath(this.jobDir(job.id));
    for (const notify of this.watchers.get(job.id) ?? []) notify();
  }

  async create(
    principal: Principal,
    policyName: string,
    on: string | undefined,
    proofs: boolean,
    upload: NodeJS.ReadableStream,
    maxBytes: number,
    /** The upload's media type: `text/csv` or `application/x-ndjson` decide; others are sniffed. */
    contentType?: string,
  ): Promise<Job> {
    const policy = this.service.authorize(policyName, principal);
    const applicationDate = this.service.applicationDate(on);
    const id = randomUUID();
    const dir = this.jobDir(id);
    mkdirSync(dir, { recursive: true });
    const inputFile = join(dir, "input");
    let bytes = 0;
    try {
      await pipeline(
        upload,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            bytes += chunk.length;
            if (bytes > maxBytes)
              callback(
                new VerificationRefused(
                  ErrorCode.LimitExceeded,
                  `Uploads are limited to ${maxBytes} bytes`,
                ),
              );
            else callback(null, chunk);
          },
        }),
        createWriteStream(inputFile),
      );
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const format = formatOfMediaType(contentType) ?? detectFormat(inputFile);
    // Refused now rather than accepted and failed later: a CSV without the subject's column, a
    // first record that cannot be read. Nothing of a refused upload stays on disk.
    try {
      const problem = await inputProblem(inputFile, policy.subjectKind, format);
      if (problem !== null) {
        throw new VerificationRefused(
          ErrorCode.BadUserInput,
          `The upload cannot be read: ${problem}`,
        );
      }
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const job: Job = {
      ...this.newJob(id, principal, policy.name, applicationDate, proofs),
      format,
      total: await countRecords(inputFile, format),
    };
    // The upload, job.json and the folder naming them are on disk before the job is accepted.
    this.accept(job, inputFile);
    return job;
  }

  /**
   * A new job verifying again the UNDETERMINED subjects of a finished job (a department did not
   * answer for them), for the same desk, policy, day and proofs; its results are the whole
   * previous results with those lines replaced, in the same order.
   */
  async recheck(previous: Job, principal: Principal): Promise<Job> {
    if (previous.status === "failed") {
      throw new VerificationRefused(
        ErrorCode.BadUserInput,
        `Job ${previous.id} failed (${previous.error ?? "see its status"}); a failed job is not checked again: submit its subjects in a new job`,
      );
    }
    if (previous.status !== "done") {
      throw new JobConflict(
        `Job ${previous.id} is ${previous.status}; its UNDETERMINED verdicts can be checked again once it is done`,
      );
    }
    const undetermined = previous.counts.byOutcome.UNDETERMINED ?? 0;
    if (undetermined === 0) {
      throw new VerificationRefused(
        ErrorCode.BadUserInput,
        `Job ${previous.id} has no UNDETERMINED verdicts to check again`,
      );
    }
    // One recheck at a time: each would copy the whole results and verify the same subjects.
    const pending = previous.recheck ? this.read(previous.recheck) : null;
    if (pending && (pending.status === "queued" || pending.status === "running")) {
      throw new JobConflict(
        `Job ${previous.id} is being checked again by job ${pending.id} (${pending.status}); wait for it`,
      );
    }
    // The same case as the job it completes: its proofs and ledger entries name the first's case.
    const asked: Principal = { ...principal, caseId: previous.principal.caseId };
    const policy = this.service.authorize(previous.policy, asked);
    const id = randomUUID();
    previous.recheck = id;
    this.write(previous);
    const dir = this.jobDir(id);
    const inputFile = join(dir, "input");
    try {
      mkdirSync(dir, { recursive: true });
      // A copy: the previous job's results stay as they were, whatever this job becomes.
      await copyFile(join(this.jobDir(previous.id), "results.ndjson"), inputFile);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      previous.recheck = null;
      this.write(previous);
      throw error;
    }
    const job: Job = {
      ...this.newJob(id, asked, policy.name, previous.on, previous.proofs),
      format: "ndjson",
      total: previous.total,
      recheckOf: previous.id,
    };
    this.accept(job, inputFile);
    return job;
  }

  private newJob(
    id: string,
    principal: Principal,
    policy: string,
    on: string,
    proofs: boolean,
  ): Omit<Job, "format" | "total"> {
    return {
      id,
      policy,
      on,
      issuedAt: Math.floor(Date.now() / 1000),
      proofs,
      status: "queued",
      createdAt: new Date().toISOString(),
      finishedAt: null,
      done: 0,
      counts: new Tally().toJSON(),
      error: null,
      principal: {
        kind: principal.kind,
        deskId: principal.deskId,
        deskName: principal.deskName,
        purpose: principal.purpose,
        legalBasis: principal.legalBasis,
        caseId: principal.caseId,
        scopes: [...principal.scopes],
      },
    };
  }

  /** Its input, job.json and the folder naming them on disk, then queued: the 202 is a promise. */
  private accept(job: Job, inputFile: string): void {
    syncPath(inputFile);
    this.write(job, true);
    syncPath(this.dir);
    this.enqueue(job.id);
  }

  /** Whether `principal` may see the job: only the desk (and purpose) that submitted it. */
  mayAccess(job: Job, principal: Principal): boolean {
    return (
      job.principal.deskId === principal.deskId &&
      job.principal.purpose === principal.purpose &&
      job.principal.kind === principal.kind
    );
  }

  /** Queues the jobs a previous gateway process left unfinished, oldest first. */
  resumeUnfinished(): void {
    if (!existsSync(this.dir)) return;
    const unfinished = readdirSync(this.dir)
      .map((id) => this.read(id))
      .filter(
        (job): job is Job => job !== null && (job.status === "queued" || job.status === "running"),
      )
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const job of unfinished) this.enqueue(job.id);
  }

  private enqueue(id: string): void {
    this.queue.push(id);
    if (!this.running) this.running = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      for (let id = this.queue.shift(); id !== undefined; id = this.queue.shift()) {
        if (this.controller.signal.aborted) break;
        try {
          await this.runJob(id);
        } catch (error) {
          // Outside the job's own failure handling (its claim, its job.json): the job stays as
          // it was on disk and the next gateway to start tries it again; the queue goes on.
          this.services.log.error({ err: error, job: id }, "verification job could not be run");
        }
      }
    } finally {
      this.running = null;
    }
  }

  /**
   * Takes the job for this process: several gateway processes on one data directory may share
   * the jobs directory, and each job must be run by exactly one. The claim is a row written in a
   * SQLite write transaction (`jobs/.claims.db`), so that two processes taking over the claim of
   * a dead one cannot both succeed, as they could with a lock file removed and created again.
   */
  private claim(id: string): boolean {
    if (!this.claims) {
      mkdirSync(this.dir, { recursive: true });
      this.claims = ProcessClaims.open(join(this.dir, ".claims.db"));
    }
    return this.claims.take(id).mine;
  }

  private async runJob(id: string): Promise<void> {
    if (!this.claim(id)) return;
    try {
      await this.runClaimedJob(id);
    } finally {
      this.claims?.release(id);
    }
  }

  private async runClaimedJob(id: string): Promise<void> {
    const job = this.read(id);
    if (!job || job.status === "done" || job.status === "failed") return;
    const principal = principalOf(job.principal);
    let lastWrite = 0;
    try {
      const policy = this.service.authorize(job.policy, principal);
      const resultsFile = join(this.jobDir(id), "results.ndjson");
      const { done, tally } = await resumeOutput(resultsFile);
      job.status = "running";
      job.error = null;
      job.done = done;
      job.counts = tally.toJSON();
      this.write(job);
      await runBatch({
        records: job.recheckOf
          ? readPreviousResults(join(this.jobDir(id), "input"))
          : readSubjects(join(this.jobDir(id), "input"), policy.subjectKind, job.format),
        output: resultsFile,
        skip: done,
        batchSize: this.service.config.batchSize,
        concurrency: this.service.config.jobsConcurrency,
        withQuota: policy.quota !== undefined,
        signal: this.controller.signal,
        verify: async (subjects) => {
          const context = requestContext(`job-${id}`, principal, this.services.log);
          const run = await this.service.verify(policy, subjects, job.on, context, job.issuedAt);
          const parts = await Promise.all(this.service.resultLines(run, principal, job.proofs));
          return {
            text: parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts),
            outcomes: run.verdicts,
          };
        },
        onWritten: (count, outcomes) => {
          for (const { outcome, reasons } of outcomes) tally.add(outcome, reasons);
          job.done = count;
          job.counts = tally.toJSON();
          if (Date.now() - lastWrite > 1000) {
            lastWrite = Date.now();
            this.write(job);
          } else {
            for (const notify of this.watchers.get(id) ?? []) notify();
          }
        },
      });
      if (this.controller.signal.aborted) {
        this.write(job);
        return;
      }
      job.status = "done";
      job.total = job.done;
    } catch (error) {
      if (error instanceof LedgerUnavailable) {
        // Nothing is verified while accesses cannot be recorded, and this gateway is not ready
        // again until it restarts: the job waits for the next start, where it resumes.
        this.services.log.error(
          { err: error, job: id },
          "verification job paused: no audit ledger",
        );
        job.status = "queued";
        job.error =
          "paused: the audit ledger is unavailable; the job resumes when the gateway restarts";
        this.write(job);
        return;
      }
      this.services.log.error({ err: error, job: id }, "verification job failed");
      job.status = "failed";
      job.error =
        error instanceof VerificationRefused || error instanceof InputProblem
          ? error.message
          : "internal error; see the gateway log";
    }
    job.finishedAt = new Date().toISOString();
    this.write(job);
  }

  /** Calls `notify` whenever the job writes results, until the returned function is called. */
  watch(id: string, notify: () => void): () => void {
    const set = this.watchers.get(id) ?? new Set<() => void>();
    this.watchers.set(id, set);
    set.add(notify);
    return () => {
      set.delete(notify);
      if (set.size === 0) this.watchers.delete(id);
    };
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.running;
    this.claims?.close();
    this.claims = null;
  }
}

function principalOf(stored: StoredPrincipal): Principal {
  return {
    ...OPEN_PRINCIPAL,
    kind: stored.kind,
    deskId: stored.deskId,
    deskName: stored.deskName,
    purpose: stored.purpose,
    legalBasis: stored.legalBasis,
    caseId: stored.caseId,
    scopes: new Set(stored.scopes),
  };
}

function sendError(reply: FastifyReply, status: number, code: string, message: string) {
  reply.request.outcome = code;
  return reply
    .code(status)
    .type("application/json; charset=utf-8")
    .send({ errors: [{ message, extensions: { code } }] });
}

const STATUS_OF_CODE: Record<string, number> = {
  [ErrorCode.BadUserInput]: 400,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.LimitExceeded]: 413,
};

/** Progress as a desk reads it. */
function jobView(job: Job) {
  const elapsed = (Date.now() - Date.parse(job.createdAt)) / 1000;
  const rate = job.done / Math.max(elapsed, 0.001);
  return {
    id: job.id,
    policy: job.policy,
    on: job.on,
    status: job.status,
    total: job.total,
    done: job.done,
    subjectsPerSecond: Math.round(rate),
    etaSeconds:
      job.status === "running" && rate > 0 ? Math.ceil((job.total - job.done) / rate) : null,
    counts: job.counts,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
    error: job.error,
    results: `/jobs/${job.id}/results`,
    recheckOf: job.recheckOf ?? null,
  };
}

export async function registerJobRoutes(
  app: FastifyInstance,
  jobs: JobRunner,
  authenticated: AuthenticatedRouteOptions,
): Promise<void> {
  const principalFor = (request: FastifyRequest, reply: FastifyReply): Principal | null => {
    // Without the gateway's authentication hook on these routes, only an open gateway serves them.
    const principal =
      (request.principal as Principal | null) ?? (jobs.open ? OPEN_PRINCIPAL : null);
    if (!principal) {
      void sendError(
        reply,
        401,
        ErrorCode.Unauthenticated,
        "Authorization: Bearer <desk key> and X-Purpose are required",
      );
    }
    return principal;
  };

  const ownJob = (
    request: FastifyRequest,
    reply: FastifyReply,
  ): { job: Job; principal: Principal } | null => {
    const principal = principalFor(request, reply);
    if (!principal) return null;
    const job = jobs.read((request.params as { id: string }).id);
    if (!job || !jobs.mayAccess(job, principal)) {
      // Another desk's job is not even acknowledged to exist.
      void sendError(reply, 404, ErrorCode.NotFound, "No such job");
      return null;
    }
    return { job, principal };
  };

  app.get("/jobs/:id", authenticated, async (request, reply) => {
    const own = ownJob(request, reply);
    if (!own) return reply;
    return reply.send(jobView(own.job));
  });

  await app.register(async (scope) => {
    // Uploads stream to disk: no parsing, no size limit of the GraphQL endpoint (a recheck has
    // no body to read, whatever its type says).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

    scope.post("/jobs", authenticated, async (request, reply) => {
      const principal = principalFor(request, reply);
      if (!principal) return reply;
      const query = request.query as { policy?: string; on?: string; proofs?: string };
      if (!query.policy) {
        return sendError(
          reply,
          400,
          ErrorCode.BadUserInput,
          "The query parameter policy is required",
        );
      }
      if (!request.body || typeof (request.body as NodeJS.ReadableStream).pipe !== "function") {
        return sendError(
          reply,
          400,
          ErrorCode.BadUserInput,
          "Upload the subjects as the request body (CSV or NDJSON)",
        );
      }
      try {
        const job = await jobs.create(
          principal,
          query.policy,
          query.on,
          query.proofs !== "false",
          request.body as NodeJS.ReadableStream,
          jobs.service.config.jobsMaxBytes,
          request.headers["content-type"],
        );
        return reply.code(202).header("location", `/jobs/${job.id}`).send(jobView(job));
      } catch (error) {
        if (error instanceof VerificationRefused) {
          return sendError(reply, STATUS_OF_CODE[error.code] ?? 400, error.code, error.message);
        }
        throw error;
      }
    });

    scope.post("/jobs/:id/recheck", authenticated, async (request, reply) => {
      const own = ownJob(request, reply);
      if (!own) return reply;
      try {
        const job = await jobs.recheck(own.job, own.principal);
        return reply.code(202).header("location", `/jobs/${job.id}`).send(jobView(job));
      } catch (error) {
        if (error instanceof JobConflict) {
          return sendError(reply, 409, ErrorCode.Conflict, error.message);
        }
        if (error instanceof VerificationRefused) {
          return sendError(reply, STATUS_OF_CODE[error.code] ?? 400, error.code, error.message);
        }
        throw error;
      }
    });
  });

  app.get("/jobs/:id/results", authenticated, async (request, reply) => {
    const own = ownJob(request, reply);
    if (!own) return reply;
    const { job } = own;
    const file = join(jobs.jobDir(job.id), "results.ndjson");
    const body = new PassThrough();
    reply.type("application/x-ndjson; charset=utf-8").header("x-job-status", job.status);
    followResults(jobs, job.id, file, body).catch((error: unknown) => {
      // The status line is sent; all the client can learn is that the stream broke off.
      request.log.error({ err: error, job: job.id }, "could not stream a job's results");
      body.destroy(error as Error);
    });
    return reply.send(body);
  });
}

/** Streams complete result lines, following a queued or running job until it ends. */
async function followResults(
  jobs: JobRunner,
  id: string,
  file: string,
  body: PassThrough,
): Promise<void> {
  let position = 0;
  let wake: (() => void) | null = null;
  const stop = jobs.watch(id, () => wake?.());
  body.on("close", () => wake?.());
  try {
    // A client that went away destroys the stream: a write to it would wait for a "drain" that
    // never comes, holding the watcher and up to 8 MB of lines.
    while (!body.destroyed) {
      const job = jobs.read(id);
      const finished = !job || job.status === "done" || job.status === "failed";
      const size = existsSync(file) ? statSync(file).size : 0;
      if (size > position) {
        // Only whole lines: the writer may be in the middle of one.
        const chunk = await readRange(file, position, size);
        const end = chunk.lastIndexOf(0x0a) + 1;
        if (end > 0) {
          if (!body.write(chunk.subarray(0, end))) await drainedOrClosed(body);
          position += end;
          continue;
        }
      }
      if (finished) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1000);
      });
      wake = null;
    }
  } finally {
    stop();
    body.end();
  }
}

/** Resolves once `stream` wants more, or is closed (its reader gone). */
function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(file, {
    start,
    end: Math.min(end, start + (8 << 20)) - 1,
  })) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
