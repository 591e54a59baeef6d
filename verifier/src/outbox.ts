import type { Logger } from '../../common/src/log.ts';
import type { Database, Store } from '../../common/src/store.ts';
import { HubRefused } from './errors.ts';

/** How often an outbox is drained (an alert also drains its outbox at once). */
const DRAIN_INTERVAL_MS = 1000;

/** An entry the hub refused for good, kept for the operator beside the outbox. */
export interface DeadLetter<V> {
  value: V;
  code: string;
  detail: string;
  at: string;
}

export interface OutboxDrainOptions<V> {
  /** What the outbox holds, for the log ("alerts", "stored state changes"). */
  what: string;
  /** The database that keeps refused entries (the dead letters). */
  deadLetters: string;
  /** Inside the transaction that sets `entry` aside: the caller records the final answer. */
  onRefused?: (entry: { key: string; value: V }, refusal: HubRefused) => void;
}

/**
 * Sends a durable LMDB outbox to the hub in the background: oldest first, in pages; a page is
 * removed only after `deliver` resolved for it; a failure to reach the hub ends the round and the
 * next tick (or `drain()` call) tries again. One round at a time.
 *
 * A final refusal (a 4xx answer other than 401, which concerns the node's own credentials, 408 and
 * 429, which ask it to try later; `HubRefused.final`) gets the same answer however often it is
 * sent, so it must never block what follows. The page is then sent
 * one entry at a time, and each entry the hub refuses is moved to the dead letters, logged as an
 * error and counted in `/health` and `/metrics`, with its final answer recorded by `onRefused`.
 */
export class OutboxDrain<V> {
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private readonly dead: Database<DeadLetter<V>, string>;
  /** Dead letters by the hub's code, counted once at start and then as entries are set aside. */
  private readonly deadByCode = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly db: Database<V, string>,
    private readonly deliver: (page: { key: string; value: V }[]) => Promise<void>,
    private readonly logger: Logger,
    private readonly options: OutboxDrainOptions<V>,
  ) {
    this.dead = store.db(options.deadLetters);
    for (const { value } of this.dead.getRange()) this.count(value.code);
  }

  /** Drains every DRAIN_INTERVAL_MS from now on, until `stop()`. */
  start(): void {
    this.timer = setInterval(() => void this.drain(), DRAIN_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Entries the hub refused for good. */
  deadLetters(): number {
    return this.dead.getCount();
  }

  /** The same, by the code of the hub's refusal (for monitoring: what kind of refusal piles up). */
  deadLettersByCode(): ReadonlyMap<string, number> {
    return this.deadByCode;
  }

  private count(code: string): void {
    this.deadByCode.set(code, (this.deadByCode.get(code) ?? 0) + 1);
  }

  async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      for (;;) {
        const page = [...this.db.getRange({ limit: 500 })] as { key: string; value: V }[];
        if (page.length === 0) return;
        try {
          await this.deliver(page);
          await this.remove(page);
        } catch (err) {
          if (!isFinal(err)) throw err;
          for (const entry of page) await this.deliverAlone(entry);
        }
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, `${this.options.what} not delivered yet; will retry`);
    } finally {
      this.sending = false;
    }
  }

  private async deliverAlone(entry: { key: string; value: V }): Promise<void> {
    try {
      await this.deliver([entry]);
      await this.remove([entry]);
    } catch (err) {
      if (!isFinal(err)) throw err;
      this.logger.error(
        { key: entry.key, status: err.status, code: err.hubCode, err: err.message },
        `the hub refused one of the ${this.options.what}; set aside as a dead letter`,
      );
      await this.store.transaction(() => {
        this.db.removeSync(entry.key);
        this.dead.putSync(entry.key, {
          value: entry.value,
          code: err.hubCode,
          detail: err.message,
          at: new Date().toISOString(),
        });
        this.options.onRefused?.(entry, err);
      });
      this.count(err.hubCode);
    }
  }

  private remove(page: { key: string }[]): Promise<void> {
    return this.store.transaction(() => {
      for (const e of page) this.db.removeSync(e.key);
    });
  }
}

/** A refusal of the entry itself (HubRefused.final): not 401, 408 or 429, which say nothing of the entry. */
function isFinal(err: unknown): err is HubRefused {
  return err instanceof HubRefused && err.final;
}
