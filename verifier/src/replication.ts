import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/src/log.ts';
import { FeedIntegrityError, type HubRefused, HubUnavailable } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import type { Checkpoint, Replica } from './replica.ts';

/**
 * `revoked`: the hub refuses the node's certificate (revoked by the CA, expired, or not the CA's);
 * final until the node is restarted with a new certificate.
 */
export type ReplicationState = 'starting' | 'bootstrapping' | 'following' | 'resyncing' | 'revoked' | 'stopped';

export interface ReplicationStatus {
  state: ReplicationState;
  appliedSeq: number;
  hubSeq: number;
  lastAppliedAt?: number;
  lastError?: string;
  bootstraps: number;
}

const PACKS_PER_TRANSACTION = 50_000;

/**
 * Keeps a node's replica in step with its market's feed: bootstrap from the hub's snapshot when
 * the replica has no checkpoint, then follow the records with long-polls, applying each page in
 * one transaction with its checkpoint. A gap or a broken hash chain stops the node serving (state
 * `resyncing`) until a fresh snapshot is loaded; it never answers from a replica it knows is wrong.
 *
 * When the hub refuses the node's certificate, to the feed or to any write, replication stops for
 * good (state `revoked`) and the node stops serving: its replica no longer receives recalls and
 * the decommissions of other markets, so an ACTIVE answer could be wrong (ARCHITECTURE.md). An
 * unreachable hub is different: the node keeps serving from its replica (offline mode).
 */
export class Replicator {
  readonly status: ReplicationStatus = { state: 'starting', appliedSeq: 0, hubSeq: 0, bootstraps: 0 };
  private running = false;
  private loop: Promise<void> | undefined;
  /** Ends a long-poll or a snapshot download in flight when the node stops. */
  private aborter = new AbortController();
  private refused: HubRefused | undefined;

  constructor(
    private readonly replica: Replica,
    private readonly hub: HubClient,
    private readonly logger: Logger,
    /** Feed records per request, the long-poll wait and the pause after a failure (verifier/src/config.ts). */
    private readonly options: { pageSize: number; waitMs: number; retryMs: number },
  ) {
    hub.onCertificateRefused((refusal) => this.certificateRefused(refusal));
  }

  /** The hub's refusal of the node's certificate, once it happened (state `revoked`). */
  get certificateRefusal(): HubRefused | undefined {
    return this.refused;
  }

  /** Whether answers may be given: the replica is complete and its feed chain intact. */
  get serving(): boolean {
    return this.status.state === 'following';
  }

  start(): void {
    this.running = true;
    this.aborter = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.status.state = 'stopped';
    this.aborter.abort();
    await this.loop?.catch(() => undefined);
  }

  /** Resolves once the replica has caught up with `seq` (tests, demos). */
  async waitFor(seq: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.status.appliedSeq < seq || !this.serving) {
      if (Date.now() > deadline)
        throw new Error(`replica did not reach ${seq} (at ${this.status.appliedSeq}, ${this.status.state})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async run(): Promise<void> {
    const existing = this.replica.checkpoint();
    if (existing) this.status.appliedSeq = existing.seq;
    while (this.running) {
      try {
        if (!this.replica.checkpoint()) await this.bootstrap();
        if (!this.running) return;
        this.status.state = 'following';
        await this.followOnce();
      } catch (err) {
        if (!this.running) return;
        this.status.lastError = (err as Error).message;
        if (err instanceof FeedIntegrityError) {
          this.logger.error({ err }, 'feed integrity broken; resynchronising from a snapshot');
          this.status.state = 'resyncing';
          await this.replica.store.transaction(() => this.replica.clear());
          continue;
        }
        if (!(err instanceof HubUnavailable)) this.logger.error({ err }, 'replication failed');
        else this.logger.warn({ err: err.message }, 'hub unavailable; retrying');
        await sleep(this.options.retryMs, undefined, { signal: this.aborter.signal }).catch(() => undefined);
      }
    }
  }

  /** Stops replication for good: no answer of this node can be trusted to be current any more. */
  private certificateRefused(refusal: HubRefused): void {
    this.refused = refusal;
    this.running = false;
    this.status.state = 'revoked';
    this.status.lastError = `the hub refuses this node's certificate (${refusal.hubCode}): ${refusal.message}`;
    this.aborter.abort();
    this.logger.error(
      { code: refusal.hubCode, err: refusal.message },
      "the hub refuses this node's certificate; the node stops serving until it is restarted with a new one",
    );
  }

  private async followOnce(): Promise<void> {
    const after = this.replica.checkpoint()!.seq;
    const { records, hubSeq } = await this.hub.records(
      after,
      this.options.pageSize,
      this.options.waitMs,
      this.aborter.signal,
    );
    this.status.hubSeq = Math.max(hubSeq, this.status.hubSeq);
    if (records.length === 0) return;
    const c = await this.replica.applyRecords(records);
    this.status.appliedSeq = c.seq;
    this.status.lastAppliedAt = Date.now();
  }

  /**
   * Loads the snapshot into an emptied replica in several transactions and writes the checkpoint
   * last: a node killed half-way finds no checkpoint and starts the bootstrap again.
   */
  private async bootstrap(): Promise<void> {
    this.status.state = this.status.bootstraps > 0 ? 'resyncing' : 'bootstrapping';
    const started = performance.now();
    await this.replica.store.transaction(() => this.replica.clear());
    let checkpoint: Checkpoint | undefined;
    let pending: (() => void)[] = [];
    let pendingPacks = 0;
    let packs = 0;
    let complete = false;
    const flush = async () => {
      const work = pending;
      pending = [];
      pendingPacks = 0;
      await this.replica.store.transaction(() => {
        for (const w of work) w();
      });
    };
    for await (const line of this.hub.snapshot(this.aborter.signal)) {
      switch (line.type) {
        case 'snapshot':
          checkpoint = { seq: line.seq, hash: line.hash };
          break;
        case 'packs':
          pending.push(() => this.replica.loadPacks(line.productCode, line.packs));
          pendingPacks += line.count;
          packs += line.count;
          break;
        case 'end':
          if (line.packs !== packs)
            throw new FeedIntegrityError(`snapshot announced ${line.packs} packs, carried ${packs}`);
          complete = true;
          break;
        default:
          pending.push(() => this.replica.applyBody(line));
      }
      if (pendingPacks >= PACKS_PER_TRANSACTION) await flush();
    }
    if (!checkpoint || !complete) throw new HubUnavailable('the snapshot ended early; starting again');
    const at = checkpoint;
    pending.push(() => this.replica.setCheckpoint(at));
    await flush();
    this.status.appliedSeq = at.seq;
    this.status.bootstraps++;
    this.logger.info(
      { seq: at.seq, packs, ms: Math.round(performance.now() - started) },
      'replica bootstrapped from snapshot',
    );
  }
}
