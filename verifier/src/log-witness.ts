import { type Checkpoint, openCheckpoint } from '../../common/src/checkpoint.ts';
import type { Logger } from '../../common/src/log.ts';
import { verifyConsistency } from '../../common/src/merkle.ts';
import { HubRefused } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import type { Replica } from './replica.ts';

/** What the witness found wrong with a checkpoint; `at` is when (ISO). */
export interface WitnessProblem {
  code: 'CHECKPOINT_INVALID' | 'LOG_FORKED' | 'LOG_INCONSISTENT';
  detail: string;
  at: string;
}

export interface WitnessStatus {
  /** Tree size of the newest checkpoint the node holds as witnessed; 0 before the first. */
  witnessedSize: number;
  /** Checkpoints refused since the start. */
  failures: number;
  lastProblem?: WitnessProblem;
}

/** How often the witness checks what it was offered. */
const CHECK_INTERVAL_MS = 1000;
/**
 * How long the witness waits for a checkpoint from the feed or a write of its own before it asks
 * the hub: the newest is never more than this old at the node, whatever the market's traffic.
 */
const POLL_AFTER_MS = 2000;

/**
 * The node as a witness of the hub's evidence log (ARCHITECTURE.md, "Evidence"): each checkpoint
 * the feed answers carry must be signed by the log's key (configured, never taken from the hub), and
 * consistent with the last one the node witnessed (RFC 9162 §2.1.4, the proof fetched from the
 * hub). The node keeps the newest good one in its own store and serves it, so an auditor can hold
 * the hub's log to a checkpoint its operator cannot take back. A bad checkpoint is refused,
 * counted and logged as an error, and the one witnessed before stays: that pair is the proof.
 *
 * What it leaves alone: pharmacies are served as before (the evidence log is the hub's record of
 * signed writes, not the replica's data).
 */
export class LogWitness {
  readonly status: WitnessStatus = { witnessedSize: 0, failures: 0 };
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private lastSeen: string | undefined;
  /** The newest checkpoint a feed answer carried (the replicator hands it over). */
  private received: string | undefined;
  private receivedSize = 0;
  private offeredAt = 0;

  constructor(
    private readonly replica: Pick<Replica, 'witnessedCheckpoint' | 'keepWitnessedCheckpoint'>,
    private readonly hub: Pick<HubClient, 'consistencyProof' | 'evidenceCheckpoint'>,
    /** The log's note verifier key, from the node's configuration (`evidenceLogKey`). */
    private readonly logKey: string,
    private readonly logger: Logger,
  ) {
    const held = replica.witnessedCheckpoint();
    if (held) this.status.witnessedSize = openCheckpoint(held, logKey).size;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.round = this.round
        .then(async () => {
          if (Date.now() - this.offeredAt >= POLL_AFTER_MS) {
            const note = await this.hub.evidenceCheckpoint();
            if (note) this.offer(note);
          }
          await this.check();
        })
        .catch((err: unknown) => {
          this.logger.warn({ err }, 'evidence checkpoint not checked yet');
        });
    }, CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }

  /**
   * A checkpoint from a hub answer, checked at the next round; of those offered in between, the
   * largest (feed answers and write receipts cross). A note whose size cannot be read is taken,
   * and refused by the check.
   */
  offer(note: string): void {
    this.offeredAt = Date.now();
    const size = Number(note.split('\n', 2)[1]);
    if (note === this.lastSeen || (this.received !== undefined && size <= this.receivedSize)) return;
    this.received = note;
    this.receivedSize = Number.isSafeInteger(size) ? size : 0;
  }

  /** Checks the newest offered checkpoint once (the timer calls it). */
  async check(): Promise<void> {
    const note = this.received;
    if (!note) return;
    let next: Checkpoint;
    try {
      next = openCheckpoint(note, this.logKey);
    } catch (err) {
      return this.refuse(note, 'CHECKPOINT_INVALID', (err as Error).message);
    }
    if (next.origin !== this.logKey.split('+')[0]) {
      return this.refuse(note, 'CHECKPOINT_INVALID', `a checkpoint of the log "${next.origin}"`);
    }
    const heldNote = this.replica.witnessedCheckpoint();
    const held = heldNote ? openCheckpoint(heldNote, this.logKey) : undefined;
    if (held) {
      if (next.size === held.size && !next.root.equals(held.root)) {
        return this.refuse(note, 'LOG_FORKED', `two different trees of ${next.size} records were signed`);
      }
      if (next.size !== held.size) {
        // An older checkpoint arriving late must be a prefix of the held one; a newer one extend it.
        const [small, large] = next.size < held.size ? [next, held] : [held, next];
        let proof: Buffer[];
        try {
          proof = await this.hub.consistencyProof(small.size, large.size);
        } catch (err) {
          // Unreachable: thrown on, the next round tries the same checkpoint again. A refusal
          // (the hub holds no such sizes) means it cannot prove the checkpoint it signed.
          if (!(err instanceof HubRefused)) throw err;
          return this.refuse(note, 'LOG_INCONSISTENT', `the hub gives no consistency proof: ${err.message}`);
        }
        if (!verifyConsistency(small.size, large.size, small.root, large.root, proof)) {
          return this.refuse(
            note,
            'LOG_INCONSISTENT',
            `the trees of ${small.size} and ${large.size} records (the node witnessed ${held.size}) are not one log`,
          );
        }
      }
    }
    this.lastSeen = note;
    this.received = undefined;
    if (held && next.size <= held.size) return;
    await this.replica.keepWitnessedCheckpoint(note);
    this.status.witnessedSize = next.size;
  }

  private refuse(note: string, code: WitnessProblem['code'], detail: string): void {
    this.lastSeen = note;
    this.received = undefined;
    this.status.failures++;
    this.status.lastProblem = { code, detail, at: new Date().toISOString() };
    this.logger.error({ code, checkpoint: note }, `evidence checkpoint refused: ${detail}`);
  }
}
