import { randomUUID } from 'node:crypto';
import type { Logger } from '../../common/src/log.ts';
import type { Database, Store } from '../../common/src/store.ts';
import type { HubClient } from './hub-client.ts';
import { OutboxDrain } from './outbox.ts';
import type { Caller } from './token-validator.ts';
import type { AlertCode, PackQuery, ReturnCode } from './verification.ts';

/**
 * An alert as the node raises it and sends it to the hub, which keeps it for the product's owner.
 * It carries the access token of the client whose scan raised it: the hub takes `raisedBy` from
 * that token, never from the node.
 */
export interface Alert {
  id: string;
  code: AlertCode;
  returnCode: ReturnCode;
  detail: string;
  market: string;
  nodeId: string;
  pack: PackQuery;
  raisedAt: string;
  token: string;
}

/**
 * Alerts go to the hub through a durable outbox in the node's LMDB: written in the request that
 * raises them, sent in the background, removed only once the hub has stored them. The hub
 * de-duplicates by id, so a resend after a crash is harmless.
 */
export class AlertOutbox {
  private readonly db: Database<Alert, string>;
  private readonly drain: OutboxDrain<Alert>;

  constructor(
    private readonly store: Store,
    hub: HubClient,
    logger: Logger,
    private readonly context: { market: string; nodeId: string },
  ) {
    this.db = store.db('alert-outbox');
    this.drain = new OutboxDrain(store, this.db, (page) => hub.sendAlerts(page.map((e) => e.value)), logger, {
      what: 'alerts',
      deadLetters: 'alert-dead-letters',
    });
  }

  /** Records an alert for sending; resolves when it is durable in the outbox. */
  async raise(
    code: AlertCode,
    returnCode: ReturnCode,
    detail: string,
    pack: PackQuery,
    caller: Pick<Caller, 'token'>,
    raisedAt?: Date,
  ): Promise<Alert> {
    const [alert] = await this.raiseAll([{ code, returnCode, detail, pack }], caller, raisedAt);
    return alert!;
  }

  /**
   * Records several alerts in one durable write (a bulk request raises them together). `raisedAt`
   * is now, or the time of the scan the alert concerns (it must lie inside the token's validity).
   */
  async raiseAll(
    items: { code: AlertCode; returnCode: ReturnCode; detail: string; pack: PackQuery }[],
    caller: Pick<Caller, 'token'>,
    at = new Date(),
  ): Promise<Alert[]> {
    const raisedAt = at.toISOString();
    const alerts: Alert[] = items.map((i) => ({
      id: randomUUID(),
      ...i,
      ...this.context,
      raisedAt,
      token: caller.token,
    }));
    if (alerts.length === 0) return alerts;
    await this.store.transaction(() => {
      for (const a of alerts) this.db.putSync(`${a.raisedAt}|${a.id}`, a);
    });
    queueMicrotask(() => void this.flush());
    return alerts;
  }

  pending(): number {
    return this.db.getCount();
  }

  /** Alerts the hub refused for good (see OutboxDrain). */
  deadLetters(): number {
    return this.drain.deadLetters();
  }

  /** The dead letters by the code of the hub's refusal. */
  deadLettersByCode(): ReadonlyMap<string, number> {
    return this.drain.deadLettersByCode();
  }

  start(): void {
    this.drain.start();
  }

  stop(): void {
    this.drain.stop();
  }

  /** Sends what is waiting, oldest first, in pages; stops at the first failure and tries later. */
  flush(): Promise<void> {
    return this.drain.drain();
  }
}
