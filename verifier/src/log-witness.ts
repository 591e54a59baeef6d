import { type Checkpoint, openCheckpoint } from '../../common/src/checkpoint.ts';
import type { Logger } from '../../common/src/log.ts';
import { verifyConsistency } from '../../common/src/merkle.ts';
import { HubRefused } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import type { Replica } from './replica.ts';

/** What the witness found wrong with a checkpoint; `at` is when (ISO). */
export interface WitnessProblem {
  code: 'CHECKPOINT_INVALID' | 'LOG_SHRANK' | 'LOG_FORKED' | 'LOG_INCONSISTENT';
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

/** How often the witness looks for a newer checkpoint on the feed. */
const CHECK_INTERVAL_MS = 1000;

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

  constructor(
    private readonly replica: Pick<Replica, 'witnessedCheckpoint' | 'keepWitnessedCheckpoint'>,
    private readonly hub: Pick<HubClient, 'consistencyProof'>,
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
        .then(() => this.check())
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

  /** A checkpoint from a feed answer: checked at the next round. */
  offer(note: string): void {
    this.received = note;
  }

  /** Checks the newest offered checkpoint once (the timer calls it). */
  async check(): Promise<void> {
    const note = this.received;
    if (!note || note === this.lastSeen) return;
    let next: Checkpoint;
    try {
      next = openCheckpoint(note, this.logKey);
    } catch (err) {
      return this.refuse(note, 'CHECKPOINT_INVALID', (err as Error).message);
    }
    const heldNote = this.replica.witnessedCheckpoint();
    const held = heldNote ? openCheckpoint(heldNote, this.logKey) : undefined;
    if (held) {
      if (next.size < held.size) {
        return this.refuse(note, 'LOG_SHRANK', `a checkpoint of ${next.size} records after one of ${held.size}`);
      }
      if (next.size === held.size && !next.root.equals(held.root)) {
        return this.refuse(note, 'LOG_FORKED', `two different trees of ${next.size} records were signed`);
      }
      if (next.size > held.size) {
        let proof: Buffer[];
        try {
          proof = await this.hub.consistencyProof(held.size, next.size);
        } catch (err) {
          // Unreachable: thrown on, the next round tries the same checkpoint again. A refusal
          // (the hub holds no such sizes) means it cannot prove the checkpoint it signed.
          if (!(err instanceof HubRefused)) throw err;
          return this.refuse(note, 'LOG_INCONSISTENT', `the hub gives no consistency proof: ${err.message}`);
        }
        if (!verifyConsistency(held.size, next.size, held.root, next.root, proof)) {
          return this.refuse(
            note,
            'LOG_INCONSISTENT',
            `the tree of ${next.size} records does not extend the one of ${held.size} the node witnessed`,
          );
        }
      }
    }
    await this.replica.keepWitnessedCheckpoint(note);
    this.lastSeen = note;
    this.status.witnessedSize = next.size;
  }

  private refuse(note: string, code: WitnessProblem['code'], detail: string): void {
    this.lastSeen = note;
    this.status.failures++;
    this.status.lastProblem = { code, detail, at: new Date().toISOString() };
    this.logger.error({ code, checkpoint: note }, `evidence checkpoint refused: ${detail}`);
  }
}
