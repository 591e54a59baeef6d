import type { Logger } from '../../common/src/log.ts';
import type { Database, Store } from '../../common/src/store.ts';

/**
 * Sends a durable LMDB outbox to the hub in the background: oldest first, in pages; a page is
 * removed only after `deliver` resolved for it; a failure ends the round and the next tick (or
 * `drain()` call) tries again. One round at a time.
 */
export class OutboxDrain<V> {
  private timer: NodeJS.Timeout | undefined;
  private sending = false;

  constructor(
    private readonly store: Store,
    private readonly db: Database<V, string>,
    private readonly deliver: (page: { key: string; value: V }[]) => Promise<void>,
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.drain(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      for (;;) {
        const page = [...this.db.getRange({ limit: 500 })] as { key: string; value: V }[];
        if (page.length === 0) return;
        await this.deliver(page);
        await this.store.transaction(() => {
          for (const e of page) this.db.removeSync(e.key);
        });
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, `${this.what} not delivered yet; will retry`);
    } finally {
      this.sending = false;
    }
  }
}
