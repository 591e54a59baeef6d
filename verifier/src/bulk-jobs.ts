import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/src/log.ts';
import type { ChangeRequest } from '../../common/src/pack-rules.ts';
import type { Database, Store } from '../../common/src/store.ts';
import type { components } from '../../openapi/generated/verifier.ts';
import type { ChangeOutcome } from './change-outcomes.ts';
import { NotServing, TooManyJobs } from './errors.ts';
import type { StateChanges } from './state-changes.ts';
import type { Caller } from './token-validator.ts';
import type { PackQuery } from './verification.ts';

/** A bulk job as its client reads it (openapi/verifier.yaml `BulkJob`). */
export type BulkJobView = components['schemas']['BulkJob'];

/** What is kept of a job besides its packs and results. */
interface JobRecord {
  id: string;
  clientId: string;
  op: ChangeRequest['op'];
  status: 'queued' | 'running' | 'done';
  total: number;
  decided: number;
  createdAt: string;
  finishedAt?: string;
  /** When the job and its results are removed (its end plus the retention). */
  expiresAt?: string;
  /** The request as it was authenticated: the caller (with the token forwarded to the hub), its time and day. */
  caller: Caller;
  at: number;
  today: string;
}

type JobPacks = { txId: string; q: PackQuery }[];

export interface BulkJobsOptions {
  /** How long a finished job's results are kept, in seconds. */
  retentionSeconds: number;
  /** Jobs a client may have waiting or running at once; more are refused 429 `NODE_TOO_MANY_JOBS`. */
  maxUnfinishedPerClient: number;
  /** Whether the node serves from its replica: jobs are decided only then (not while it loads or resynchronises). */
  serving: () => boolean;
  /** Whether onboarding staff disabled the client (the replica's deny-list). */
  isDisabled: (clientId: string) => boolean;
}

/** How often a worker waiting for the replica, or after an unexpected failure, looks again. */
const RETRY_MS = 500;

/** How often finished jobs past their retention are removed. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Large bulk state changes as jobs, in the manner of the NMVS bulk interfaces (docs/pharmacy.md,
 * "Bulk requests and jobs"): the request is kept durably and answered 202 with the job's id; a
 * worker decides the jobs one at a time, oldest first, with {@link StateChanges.changeAll} (a
 * page of up to 1,000 packs per signed request to the hub), recording its progress after each
 * page; `GET /v1/jobs/{id}` gives the progress and, once done, the per-pack results, kept for
 * `retentionSeconds`. Jobs survive a restart: one queued or running when the node stopped is
 * decided again from the start, which repeats nothing, as every pack's answer is kept by its
 * transaction id (a pack the hub decided answers as decided, one kept offline as pending).
 */
export class BulkJobs {
  private readonly jobs: Database<JobRecord, string>;
  private readonly packs: Database<JobPacks, string>;
  private readonly results: Database<ChangeOutcome[], string>;
  private working: Promise<void> | undefined;
  private stopping = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly stateChanges: StateChanges,
    private readonly logger: Logger,
    private readonly options: BulkJobsOptions,
  ) {
    this.jobs = store.db('bulk-jobs');
    this.packs = store.db('bulk-job-packs');
    this.results = store.db('bulk-job-results');
  }

  /** Resumes the jobs a stop left unfinished, and removes expired ones from now on. */
  start(): void {
    this.stopping = false;
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    void this.sweep();
    this.work();
  }

  /** Takes no page further: a job being decided stays `running` and is resumed at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweeper) clearInterval(this.sweeper);
    await this.working;
  }

  /**
   * Keeps the job durably, then answers; the worker takes it up. A client with
   * `maxUnfinishedPerClient` jobs unfinished is refused (429), so that one client cannot hold the
   * node's one worker, or fill its disk, at the others' expense.
   */
  async submit(
    op: ChangeRequest['op'],
    packs: JobPacks,
    caller: Caller,
    at: number,
    today: string,
  ): Promise<BulkJobView> {
    const job: JobRecord = {
      id: randomUUID(),
      clientId: caller.clientId,
      op,
      status: 'queued',
      total: packs.length,
      decided: 0,
      createdAt: new Date(at).toISOString(),
      caller,
      at,
      today,
    };
    let refused = false;
    await this.store.transaction(() => {
      refused = this.unfinishedOf(caller.clientId) >= this.options.maxUnfinishedPerClient;
      if (refused) return;
      this.jobs.putSync(job.id, job);
      this.packs.putSync(job.id, packs);
    });
    if (refused) {
      throw new TooManyJobs(
        `This client has ${this.options.maxUnfinishedPerClient} bulk jobs unfinished; send more once one is done`,
      );
    }
    this.logger.info({ job: job.id, client: job.clientId, op, packs: packs.length }, 'bulk job queued');
    this.work();
    return this.viewOf(job);
  }

  /** The client's job (another client's is unknown to it), with its results once it is done. */
  get(clientId: string, id: string): BulkJobView | undefined {
    const job = this.jobs.get(id);
    if (!job || job.clientId !== clientId) return undefined;
    return this.viewOf(job);
  }

  /** How many jobs wait or run (for /metrics). */
  unfinished(): number {
    let n = 0;
    for (const { value } of this.jobs.getRange()) if (value.status !== 'done') n++;
    return n;
  }

  private unfinishedOf(clientId: string): number {
    let n = 0;
    for (const { value } of this.jobs.getRange()) if (value.status !== 'done' && value.clientId === clientId) n++;
    return n;
  }

  private viewOf(job: JobRecord): BulkJobView {
    const view: BulkJobView = {
      jobId: job.id,
      operation: job.op,
      status: job.status,
      total: job.total,
      decided: job.decided,
      createdAt: job.createdAt,
      ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
      ...(job.expiresAt ? { expiresAt: job.expiresAt } : {}),
    };
    if (job.status !== 'done') return view;
    // A pack answered pending then may have been decided by the hub since: its answer now.
    const results = (this.results.get(job.id) ?? []).map((r) =>
      r.outcome === 'pending' ? (this.stateChanges.answer(job.clientId, r.txId) ?? r) : r,
    );
    const counts = { accepted: 0, refused: 0, pending: 0 };
    for (const r of results) counts[r.outcome]++;
    return { ...view, counts, results };
  }

  /** Starts the worker unless it runs: it takes the oldest unfinished job until there is none. */
  private work(): void {
    if (this.working || this.stopping) return;
    // Cleared in a callback, never before the assignment, however soon the loop ends.
    this.working = this.takeJobs().finally(() => {
      this.working = undefined;
    });
  }

  private async takeJobs(): Promise<void> {
    try {
      for (;;) {
        // Decided only from a replica the node serves from: never from one being loaded or
        // resynchronised, where every pack would look unknown.
        while (!this.options.serving() && !this.stopping) await sleep(RETRY_MS);
        const next = this.oldestUnfinished();
        if (!next || this.stopping) return;
        try {
          await this.run(next);
        } catch (err) {
          // The replica stopped serving between two pages: the job waits and is taken up again.
          if (!(err instanceof NotServing)) throw err;
        }
      }
    } catch (err) {
      if (err instanceof JobInterrupted) {
        this.logger.info(err.message);
        return;
      }
      // The job stays unfinished and is tried again shortly.
      this.logger.error({ err }, 'bulk job failed; trying again shortly');
      setTimeout(() => this.work(), RETRY_MS * 10).unref();
    }
  }

  private oldestUnfinished(): JobRecord | undefined {
    let oldest: JobRecord | undefined;
    for (const { value } of this.jobs.getRange()) {
      if (value.status !== 'done' && (!oldest || value.createdAt < oldest.createdAt)) oldest = value;
    }
    return oldest;
  }

  private async run(job: JobRecord): Promise<void> {
    const packs = this.packs.get(job.id) ?? [];
    const started = performance.now();
    await this.update(job.id, { status: 'running' });
    let outcomes: ChangeOutcome[];
    try {
      if (this.options.isDisabled(job.clientId)) throw new ClientDisabledMeanwhile();
      outcomes = await this.stateChanges.changeAll(job.op, packs, job.caller, job.today, job.at, {
        serving: this.options.serving,
        progress: async (decided) => {
          if (this.stopping) throw new JobInterrupted(job.id);
          // Onboarding staff disabled the client (its key may have leaked): no further page is sent.
          if (this.options.isDisabled(job.clientId)) throw new ClientDisabledMeanwhile();
          await this.update(job.id, { decided });
        },
      });
    } catch (err) {
      if (!(err instanceof ClientDisabledMeanwhile)) throw err;
      outcomes = packs.map(({ txId, q }) => {
        const kept = this.stateChanges.answer(job.clientId, txId);
        if (kept && kept.productCode === q.productCode && kept.serial === q.serial) return kept;
        return {
          txId,
          operation: job.op,
          ...q,
          outcome: 'refused',
          code: 'CLIENT_DISABLED',
          detail: 'the client was disabled by onboarding staff before this pack was decided',
        };
      });
      this.logger.warn({ job: job.id, client: job.clientId }, 'bulk job stopped: its client was disabled');
    }
    const finished = new Date();
    await this.store.transaction(() => {
      const current = this.jobs.get(job.id)!;
      this.results.putSync(job.id, outcomes);
      this.jobs.putSync(job.id, {
        ...current,
        // The token was needed to send the packs; a finished job keeps no credential.
        caller: { ...current.caller, token: '' },
        status: 'done',
        decided: packs.length,
        finishedAt: finished.toISOString(),
        expiresAt: new Date(finished.getTime() + this.options.retentionSeconds * 1000).toISOString(),
      });
      // The packs were needed only to decide them; the results say which each answer is for.
      this.packs.removeSync(job.id);
    });
    this.logger.info(
      { job: job.id, packs: packs.length, ms: Math.round(performance.now() - started) },
      'bulk job done',
    );
  }

  private update(id: string, change: Partial<JobRecord>): Promise<void> {
    return this.store.transaction(() => {
      const job = this.jobs.get(id);
      if (job) this.jobs.putSync(id, { ...job, ...change });
    });
  }

  /** Removes the finished jobs past their retention, with their results. */
  private async sweep(): Promise<void> {
    const now = new Date().toISOString();
    const expired: string[] = [];
    for (const { key, value } of this.jobs.getRange()) if (value.expiresAt && value.expiresAt <= now) expired.push(key);
    if (expired.length === 0) return;
    await this.store.transaction(() => {
      for (const id of expired) {
        this.jobs.removeSync(id);
        this.results.removeSync(id);
        this.packs.removeSync(id);
      }
    });
  }
}

/** Thrown from a job's progress when its client has been disabled: the packs not decided are refused. */
class ClientDisabledMeanwhile extends Error {}

/** Thrown from a job's progress to stop it between pages when the node stops. */
class JobInterrupted extends Error {
  constructor(id: string) {
    super(`bulk job ${id} interrupted by the node stopping; it resumes at the next start`);
  }
}
