import type { Logger } from '../../common/src/log.ts';
import type { ChangeRequest } from '../../common/src/pack-rules.ts';
import type { Database, Store } from '../../common/src/store.ts';
import type { components as hub } from '../../openapi/generated/hub.ts';
import type { AlertOutbox } from './alerts.ts';
import {
  base,
  type ChangeOutcome,
  changePending,
  hubEvent,
  type KeptOutcome,
  kept,
  type PendingEvent,
  pendingOutcome,
  refusedByHub,
  requestOf,
  resultKey,
  txIdReused,
} from './change-outcomes.ts';
import { HubRefused, HubUnavailable } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import { OutboxDrain } from './outbox.ts';
import { type PendingPack, PendingPacks } from './pending-packs.ts';
import type { Caller } from './token-validator.ts';
import { decideLocally, type PackQuery, type ReplicaLookup, verifyPack } from './verification.ts';

type PackEventResult = hub['schemas']['PackEventResult'];

/**
 * Pack state changes at a node: checked locally with the same rules as the hub, then decided by
 * the hub (the authority), to which the node forwards the caller's access token as the proof of
 * who acted. When the hub cannot be reached the change is kept in a durable outbox and answered
 * `pending` (offline mode, Art. 29); it is sent when the hub is back, and a conflict found then
 * raises an alert. Until the hub has decided, the pack answers `PENDING` at this node and no
 * other change of it is taken here, so it cannot be dispensed twice during an outage.
 * A refusal by the hub is final: answered at once when online, recorded as the request's answer
 * when found later (the outbox sets the event aside, see OutboxDrain). Idempotent by the client's
 * transaction id: a repeated request gets the recorded answer.
 */
export class StateChanges {
  private readonly outbox: Database<PendingEvent, string>;
  private readonly results: Database<KeptOutcome, string>;
  private readonly pendingPacks: PendingPacks;
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
    this.pendingPacks = new PendingPacks(store);
    this.drain = new OutboxDrain(store, this.outbox, (page) => this.deliver(page), logger, {
      what: 'stored state changes',
      deadLetters: 'event-dead-letters',
      onRefused: ({ value: e }, refusal) => {
        this.results.putSync(resultKey(e), kept(e, refusedByHub(e, refusal)));
        this.pendingPacks.release(e.productCode, e.serial, resultKey(e));
      },
    });
  }

  pending(): number {
    return this.outbox.getCount();
  }

  /** Changes the hub refused after they were kept offline (see OutboxDrain). */
  deadLetters(): number {
    return this.drain.deadLetters();
  }

  /** The dead letters by the code of the hub's refusal. */
  deadLettersByCode(): ReadonlyMap<string, number> {
    return this.drain.deadLettersByCode();
  }

  /**
   * The answer to the client's request `txId`: decided (accepted or refused, by the hub or here),
   * or pending while it waits in the outbox; undefined when this node answered no such request.
   */
  answer(clientId: string, txId: string): ChangeOutcome | undefined {
    return this.results.get(resultKey({ clientId, txId }))?.outcome;
  }

  /** The change waiting for the hub for this pack at this node, if any. */
  pendingFor(productCode: string, serial: string): ChangeRequest['op'] | undefined {
    return this.pendingPacks.of(productCode, serial)?.op;
  }

  /**
   * Decides `op` on a pack for `caller`, asked at `now` (one time for every pack of a bulk
   * request, inside the validity of the token it was authenticated with).
   */
  async change(
    op: ChangeRequest['op'],
    txId: string,
    q: PackQuery,
    caller: Caller,
    today: string,
    now = Date.now(),
  ): Promise<ChangeOutcome> {
    const key = `${caller.clientId}|${txId}`;
    const earlier = this.results.get(key);
    // A transaction id answers one request: never with another pack's answer (docs/domain.md §6).
    if (earlier) return earlier.request === requestOf(q, op) ? earlier.outcome : txIdReused(txId, q, op);
    const event: PendingEvent = {
      txId,
      clientId: caller.clientId,
      productCode: q.productCode,
      serial: q.serial,
      batch: q.batch,
      expiry: q.expiry,
      op,
      at: now,
      token: caller.token,
    };
    const waiting = this.pendingPacks.of(q.productCode, q.serial);
    const v = verifyPack(q, this.replica, today);
    if (v.alert) {
      const alert = await this.alerts.raise(v.alert, v.returnCode, v.detail, q, caller);
      return this.remember(
        key,
        {
          ...base(event),
          outcome: 'refused',
          code: v.returnCode,
          detail: v.detail,
          alert: { code: v.alert, id: alert.id },
        },
        op,
      );
    }
    // Not kept as the request's answer: once the hub has decided, the same request is taken.
    if (waiting) return changePending(event, waiting.op);
    const { clientId, location, role } = caller;
    const local = decideLocally(q, this.replica, today, { op, clientId, location, role, at: now });
    if (!local.accepted) {
      const outcome: ChangeOutcome = {
        ...base(event),
        outcome: 'refused',
        code: local.code,
        state: local.state,
        detail: local.detail,
      };
      if (local.alert) {
        const alert = await this.alerts.raise(local.alert, 'DECOMMISSIONED', local.detail, q, caller);
        outcome.alert = { code: local.alert, id: alert.id };
      }
      return this.remember(key, outcome, op);
    }
    try {
      const [decided] = await this.hub.sendEvents([hubEvent(event)]);
      return this.remember(key, await this.outcomeOf(event, decided!), op);
    } catch (err) {
      if (err instanceof HubRefused) {
        if (err.final) return this.remember(key, refusedByHub(event, err), op);
        // Refused for the node's certificate: the route answers as every later call.
        if (err.certificateRefused) throw err;
      } else if (!(err instanceof HubUnavailable)) throw err;
      // Unreachable, or asked to wait (408, 429), or the node's signature refused: the outbox retries.
      return this.keepForLater(event, key, err);
    }
  }

  start(): void {
    this.drain.start();
  }

  stop(): void {
    this.drain.stop();
  }

  /** Sends stored changes in order; a refusal discovered now raises an A24 alert. */
  flush(): Promise<void> {
    return this.drain.drain();
  }

  /**
   * Keeps the change in the outbox and marks its pack pending here, in one durable write; until
   * the hub decides, `pending` is the request's answer (also by its transaction id, `answer`).
   */
  private async keepForLater(event: PendingEvent, key: string, err: Error): Promise<ChangeOutcome> {
    const marker = { key, op: event.op };
    let other: PendingPack | undefined;
    await this.store.transaction(() => {
      other = this.pendingPacks.markUnlessMarked(event.productCode, event.serial, marker);
      if (other) return;
      this.outbox.putSync(`${String(event.at).padStart(15, '0')}|${key}`, event);
      this.results.putSync(key, kept(event, pendingOutcome(event, event.op)));
    });
    if (other && other.key !== key) return changePending(event, other.op);
    this.pendingPacks.marked(event.productCode, event.serial, marker);
    this.logger.warn({ txId: event.txId, err: err.message }, 'hub unreachable; state change kept for later');
    return pendingOutcome(event, event.op);
  }

  private async deliver(page: { key: string; value: PendingEvent }[]): Promise<void> {
    const results = await this.hub.sendEvents(page.map((e) => hubEvent(e.value)));
    const outcomes: ChangeOutcome[] = [];
    for (const [i, e] of page.entries()) outcomes.push(await this.outcomeOf(e.value, results[i]!, true));
    await this.store.transaction(() => {
      for (const [i, e] of page.entries()) {
        this.results.putSync(resultKey(e.value), kept(e.value, outcomes[i]!));
        this.pendingPacks.release(e.value.productCode, e.value.serial, resultKey(e.value));
      }
    });
  }

  private async outcomeOf(e: PendingEvent, r: PackEventResult, late = false): Promise<ChangeOutcome> {
    const outcome: ChangeOutcome = {
      ...base(e),
      outcome: r.accepted ? 'accepted' : 'refused',
      code: r.code,
      ...(r.state ? { state: r.state } : {}),
      detail: r.detail,
    };
    // A refusal the node could not foresee is a conflict (another market changed the pack first).
    const alertCode = r.alert ?? (late && !r.accepted && r.code !== 'OFFLINE_WINDOW_PASSED' ? 'A24' : undefined);
    if (alertCode) {
      const q = { productCode: e.productCode, serial: e.serial, batch: e.batch, expiry: e.expiry };
      // Raised as of the request it concerns, which its token covers.
      const alert = await this.alerts.raise(
        alertCode,
        'DECOMMISSIONED',
        `state change ${e.op} refused by the hub: ${r.detail}`,
        q,
        e,
        new Date(e.at),
      );
      outcome.alert = { code: alertCode, id: alert.id };
    }
    return outcome;
  }

  private async remember(key: string, outcome: ChangeOutcome, op: ChangeRequest['op']): Promise<ChangeOutcome> {
    await this.store.transaction(() => this.results.putSync(key, { outcome, request: requestOf(outcome, op) }));
    return outcome;
  }
}
