import type { Logger } from '../../common/src/log.ts';
import { type ChangeRequest, decideChange, inactiveReasonOf, type PackState } from '../../common/src/pack-rules.ts';
import type { Database, Store } from '../../common/src/store.ts';
import type { AlertOutbox } from './alerts.ts';
import { type HubClient, HubUnavailable } from './hub-client.ts';
import { OutboxDrain } from './outbox.ts';
import type { Replica } from './replica.ts';
import type { Caller } from './token-validator.ts';
import { type PackQuery, type ReplicaLookup, verifyPack } from './verification.ts';

export interface ChangeOutcome {
  txId: string;
  /** accepted / refused by the hub (or already locally), pending when the hub was unreachable. */
  outcome: 'accepted' | 'refused' | 'pending';
  code: string;
  state?: string;
  alert?: { code: string; id: string };
  detail: string;
  productCode: string;
  serial: string;
}

interface PendingEvent {
  txId: string;
  productCode: string;
  serial: string;
  batch: string;
  expiry: string;
  op: ChangeRequest['op'];
  clientId: string;
  location: string;
  org: string;
  role: Caller['role'];
  at: number;
}

/**
 * Pack state changes at a node: checked locally with the same rules as the hub, then decided by
 * the hub (the authority). When the hub cannot be reached the change is kept in a durable outbox
 * and answered `pending` (offline mode, Art. 29); it is sent when the hub is back, and a conflict
 * found then raises an alert. Idempotent by the client's transaction id.
 */
export class StateChanges {
  private readonly outbox: Database<PendingEvent, string>;
  private readonly results: Database<ChangeOutcome, string>;
  private readonly drain: OutboxDrain<PendingEvent>;

  constructor(
    private readonly store: Store,
    private readonly replica: ReplicaLookup,
    private readonly hub: HubClient,
    private readonly alerts: AlertOutbox,
    private readonly logger: Logger,
  ) {
    this.outbox = store.db('event-outbox');
    this.results = store.db('tx-results');
    this.drain = new OutboxDrain(store, this.outbox, (page) => this.deliver(page), logger, 'stored state changes');
  }

  static lookupOf(replica: Replica): ReplicaLookup {
    return {
      product: (code) => replica.products.get(code),
      batch: (code, batch) => replica.batches.get(`${code}|${batch}`),
      pack: (code, serial) => replica.packs.get(code + serial),
    };
  }

  pending(): number {
    return this.outbox.getCount();
  }

  async change(
    op: ChangeRequest['op'],
    txId: string,
    q: PackQuery,
    caller: Caller,
    today: string,
  ): Promise<ChangeOutcome> {
    const key = `${caller.clientId}|${txId}`;
    const earlier = this.results.get(key);
    if (earlier) return earlier;
    const base = { txId, productCode: q.productCode, serial: q.serial };
    const v = verifyPack(q, this.replica, today);
    if (v.alert) {
      const alert = await this.alerts.raise(v.alert, v.returnCode, v.detail, q, caller);
      return this.remember(key, {
        ...base,
        outcome: 'refused',
        code: v.returnCode,
        detail: v.detail,
        alert: { code: v.alert, id: alert.id },
      });
    }
    const pack = this.replica.pack(q.productCode, q.serial)!;
    const product = this.replica.product(q.productCode)!;
    const inactive = inactiveReasonOf(product.status, this.replica.batch(q.productCode, pack.b), today);
    const now = Date.now();
    const current = {
      state: pack.s as PackState,
      ...(pack.by ? { by: pack.by } : {}),
      ...(pack.at !== undefined ? { at: pack.at } : {}),
    };
    const local = decideChange(
      current,
      { op, clientId: caller.clientId, location: caller.location, role: caller.role, at: now },
      inactive,
    );
    if (!local.accepted) {
      const outcome: ChangeOutcome = {
        ...base,
        outcome: 'refused',
        code: local.code,
        state: local.state,
        detail: local.detail,
      };
      if (local.alert) {
        const alert = await this.alerts.raise(local.alert, 'DECOMMISSIONED', local.detail, q, caller);
        outcome.alert = { code: local.alert, id: alert.id };
      }
      return this.remember(key, outcome);
    }
    const event: PendingEvent = {
      txId: key,
      productCode: q.productCode,
      serial: q.serial,
      batch: q.batch,
      expiry: q.expiry,
      op,
      clientId: caller.clientId,
      location: caller.location,
      org: caller.org,
      role: caller.role,
      at: now,
    };
    try {
      const [decided] = await this.hub.sendEvents([hubEvent(event)]);
      return this.remember(key, await this.outcomeOf(event, decided!, caller));
    } catch (err) {
      if (!(err instanceof HubUnavailable)) throw err;
      await this.store.transaction(() => this.outbox.putSync(`${String(now).padStart(15, '0')}|${key}`, event));
      this.logger.warn({ txId, err: err.message }, 'hub unreachable; state change kept for later');
      return {
        ...base,
        outcome: 'pending',
        code: 'PENDING',
        state: pack.s,
        detail: 'the hub is unreachable; the change is stored and will be sent',
      };
    }
  }

  start(intervalMs = 1000): void {
    this.drain.start(intervalMs);
  }

  stop(): void {
    this.drain.stop();
  }

  /** Sends stored changes in order; a refusal discovered now raises an A24 alert. */
  flush(): Promise<void> {
    return this.drain.drain();
  }

  private async deliver(page: { key: string; value: PendingEvent }[]): Promise<void> {
    const results = await this.hub.sendEvents(page.map((e) => hubEvent(e.value)));
    for (const [i, e] of page.entries()) {
      const r = results[i]!;
      const caller = {
        clientId: e.value.clientId,
        org: e.value.org,
        location: e.value.location,
        role: e.value.role,
        market: '',
        exp: 0,
      };
      await this.remember(e.value.txId, await this.outcomeOf(e.value, r, caller, true));
    }
  }

  private async outcomeOf(
    e: PendingEvent,
    r: { accepted: boolean; code: string; state?: string; alert?: string; detail: string },
    caller: Caller,
    late = false,
  ): Promise<ChangeOutcome> {
    const outcome: ChangeOutcome = {
      txId: e.txId.slice(e.txId.indexOf('|') + 1),
      outcome: r.accepted ? 'accepted' : 'refused',
      code: r.code,
      ...(r.state ? { state: r.state } : {}),
      detail: r.detail,
      productCode: e.productCode,
      serial: e.serial,
    };
    // A refusal the node could not foresee is a conflict (another market changed the pack first).
    const alertCode = r.alert ?? (late && !r.accepted ? 'A24' : undefined);
    if (alertCode) {
      const q = { productCode: e.productCode, serial: e.serial, batch: e.batch, expiry: e.expiry };
      const alert = await this.alerts.raise(
        alertCode as 'A24',
        'DECOMMISSIONED',
        `state change ${e.op} refused by the hub: ${r.detail}`,
        q,
        caller,
      );
      outcome.alert = { code: alertCode, id: alert.id };
    }
    return outcome;
  }

  private async remember(key: string, outcome: ChangeOutcome): Promise<ChangeOutcome> {
    await this.store.transaction(() => this.results.putSync(key, outcome));
    return outcome;
  }
}

function hubEvent(e: PendingEvent) {
  return {
    txId: e.txId,
    productCode: e.productCode,
    serial: e.serial,
    op: e.op,
    clientId: e.clientId,
    location: e.location,
    org: e.org,
    role: e.role,
    at: e.at,
  };
}
