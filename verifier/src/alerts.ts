import { randomUUID } from 'node:crypto';
import type { Logger } from '../../common/src/log.ts';
import type { Database, Store } from '../../common/src/store.ts';
import type { HubClient } from './hub-client.ts';
import { OutboxDrain } from './outbox.ts';
import type { Caller } from './token-validator.ts';
import type { AlertCode, PackQuery, ReturnCode } from './verification.ts';

/** A pack an aggregated alert stands for (openapi/hub.yaml `Alert.samples`). */
export type AlertSample = PackQuery;

/**
 * An alert as the node raises it and sends it to the hub, which keeps it for the product's owner.
 * It carries the access token of the client whose scan raised it: the hub takes `raisedBy` from
 * that token, never from the node. An aggregated alert (docs/domain.md §5, "Alert floods")
 * stands for `count` alerts of one client in one window, with some of their packs as `samples`.
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
  count?: number;
  samples?: AlertSample[];
}

/** The bounds of docs/domain.md §5, "Alert floods". */
export interface AlertLimits {
  /** Length of a client's window, from its first alert (config.ts DEFAULT_ALERT_WINDOW_MS). */
  windowMs: number;
}

/** Alerts of one (client, product, code) sent one by one in a window; the rest are counted in one. */
const SINGLE_ALERTS_PER_KEY = 3;
/** Alert records (single or aggregated) of one client in a window before its products are counted by owner. */
const RECORDS_PER_CLIENT = 100;
/** Packs an aggregated alert names as samples. */
const SAMPLES = 10;

/** A client's window: when it ends, its records so far, alerts seen per key. */
interface ClientWindow {
  endsAt: number;
  records: number;
  seen: Map<string, number>;
}

/** An aggregated alert being counted, kept durably until its window ends. */
interface OpenAggregate {
  alert: Alert;
  closesAt: number;
  /** The detail of the first alert it counts. */
  first: string;
}

/**
 * Alerts go to the hub through a durable outbox in the node's LMDB: written in the request that
 * raises them, sent in the background, removed only once the hub has stored them. The hub
 * de-duplicates by id, so a resend after a crash is harmless.
 *
 * Floods are bounded per client (docs/domain.md §5, "Alert floods"): in a window, the first
 * alerts of each (client, product, alert code) go one by one, the others are counted in one
 * aggregated alert with samples, sent when the window ends; past a bound of records per client,
 * its alerts are counted per product owner. Each pack's answer still names its alert (single or
 * aggregated). The counts live in the `alert-aggregates` database, written in the same
 * transaction as the request's other alerts; the windows themselves are in memory (a restart
 * opens new ones).
 */
export class AlertOutbox {
  private readonly db: Database<Alert, string>;
  private readonly aggregates: Database<OpenAggregate, string>;
  private readonly drain: OutboxDrain<Alert>;
  /** Per client id. */
  private readonly windows = new Map<string, ClientWindow>();
  /** Aggregates being counted, by their key (`client|product or owner|code`). */
  private readonly open = new Map<string, OpenAggregate>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    hub: HubClient,
    private readonly logger: Logger,
    private readonly context: {
      market: string;
      nodeId: string;
      /** The owner of a product in the replica; undefined for a product unknown here. */
      ownerOf: (productCode: string) => string | undefined;
      limits: AlertLimits;
    },
  ) {
    this.db = store.db('alert-outbox');
    this.aggregates = store.db('alert-aggregates');
    for (const { key, value } of this.aggregates.getRange()) this.open.set(key, value);
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
    caller: Pick<Caller, 'token' | 'clientId'>,
    raisedAt?: Date,
  ): Promise<Pick<Alert, 'id'>> {
    const [alert] = await this.raiseAll([{ code, returnCode, detail, pack }], caller, raisedAt);
    return alert!;
  }

  /**
   * Records several alerts in one durable write (a bulk request raises them together), within the
   * client's bounds; one id per item, the id of its single or aggregated alert. `raisedAt` is now,
   * or the time of the scan the alert concerns (it must lie inside the token's validity).
   */
  async raiseAll(
    items: { code: AlertCode; returnCode: ReturnCode; detail: string; pack: PackQuery }[],
    caller: Pick<Caller, 'token' | 'clientId'>,
    at = new Date(),
  ): Promise<Pick<Alert, 'id'>[]> {
    if (items.length === 0) return [];
    const raisedAt = at.toISOString();
    const now = Date.now();
    const window = this.windowOf(caller.clientId, now);
    const singles: Alert[] = [];
    const counted = new Map<string, OpenAggregate>();
    /** Aggregates of an ended window of this client, not yet moved by the timer: moved now. */
    const ended: OpenAggregate[] = [];
    const ids = items.map((item) => {
      const key = this.keyOf(caller.clientId, item.code, item.pack, window);
      const seen = (window.seen.get(key) ?? 0) + 1;
      window.seen.set(key, seen);
      if (seen <= SINGLE_ALERTS_PER_KEY && window.records < RECORDS_PER_CLIENT && !key.includes('|owner:')) {
        window.records++;
        const alert: Alert = { id: randomUUID(), ...item, ...this.where(), raisedAt, token: caller.token };
        singles.push(alert);
        return { id: alert.id };
      }
      let aggregate = this.open.get(key);
      if (aggregate && aggregate.closesAt <= now) {
        ended.push(aggregate);
        aggregate = undefined;
      }
      if (!aggregate) {
        window.records++;
        aggregate = {
          alert: { id: randomUUID(), ...item, ...this.where(), raisedAt, token: caller.token, count: 0, samples: [] },
          closesAt: window.endsAt,
          first: item.detail,
        };
        this.open.set(key, aggregate);
      }
      const a = aggregate.alert;
      a.count! += 1;
      if (a.samples!.length < SAMPLES) a.samples!.push(item.pack);
      a.detail =
        `${a.count} ${a.code} alerts of this client in ${this.context.limits.windowMs / 1000} s, counted in one (docs/domain.md §5); the first: ${aggregate.first}`.slice(
          0,
          500,
        );
      counted.set(key, aggregate);
      return { id: a.id };
    });
    await this.store.transaction(() => {
      for (const a of [...singles, ...ended.map((e) => e.alert)]) this.db.putSync(`${a.raisedAt}|${a.id}`, a);
      for (const [key, aggregate] of counted) this.aggregates.putSync(key, aggregate);
    });
    if (singles.length + ended.length > 0) queueMicrotask(() => void this.drain.drain());
    return ids;
  }

  pending(): number {
    return this.db.getCount() + this.aggregates.getCount();
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
    this.timer = setInterval(() => void this.closeWindows().catch((err) => this.failed(err)), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.drain.stop();
  }

  /** Moves the aggregated alerts whose window has ended to the outbox, then sends what waits. */
  async flush(now = Date.now()): Promise<void> {
    await this.closeWindows(now);
    await this.drain.drain();
  }

  /** Moves ended aggregates to the outbox (one transaction) and forgets ended windows. */
  private async closeWindows(now = Date.now()): Promise<void> {
    for (const [client, w] of this.windows) if (w.endsAt <= now) this.windows.delete(client);
    const ended = [...this.open].filter(([, a]) => a.closesAt <= now);
    if (ended.length === 0) return;
    await this.store.transaction(() => {
      for (const [key, { alert }] of ended) {
        // A request may have moved it already, and opened the key's next aggregate.
        if (this.aggregates.get(key)?.alert.id === alert.id) this.aggregates.removeSync(key);
        this.db.putSync(`${alert.raisedAt}|${alert.id}`, alert);
      }
    });
    for (const [key, aggregate] of ended) if (this.open.get(key) === aggregate) this.open.delete(key);
    await this.drain.drain();
  }

  private failed(err: unknown): void {
    this.logger.error({ err: (err as Error).message }, 'aggregated alerts not moved to the outbox; will retry');
  }

  /** The client's current window, a new one when it has none or its window has ended. */
  private windowOf(clientId: string, now: number): ClientWindow {
    let w = this.windows.get(clientId);
    if (!w || w.endsAt <= now) {
      w = { endsAt: now + this.context.limits.windowMs, records: 0, seen: new Map() };
      this.windows.set(clientId, w);
    }
    return w;
  }

  /**
   * (client, product, code); once the client has used its records of the window, a key it has
   * not used yet becomes (client, the product's owner, code): one aggregate per owner, so the
   * owner still receives only its own products' packs.
   */
  private keyOf(clientId: string, code: AlertCode, pack: PackQuery, window: ClientWindow): string {
    const key = `${clientId}|${pack.productCode}|${code}`;
    if (window.seen.has(key) || window.records < RECORDS_PER_CLIENT) return key;
    return `${clientId}|owner:${this.context.ownerOf(pack.productCode) ?? '-'}|${code}`;
  }

  private where(): { market: string; nodeId: string } {
    return { market: this.context.market, nodeId: this.context.nodeId };
  }
}
