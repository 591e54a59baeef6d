import { setImmediate } from 'node:timers/promises';
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
import { HubRefused, HubUnavailable, NotServing } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import { OutboxDrain } from './outbox.ts';
import { PendingPacks } from './pending-packs.ts';
import type { Caller } from './token-validator.ts';
import {
  type AlertCode,
  decideLocally,
  type PackQuery,
  type ReplicaLookup,
  type ReturnCode,
  verifyPack,
} from './verification.ts';

type PackEventResult = hub['schemas']['PackEventResult'];

/** Events per signed request to the hub: a bulk request's packs go in pages of at most this many. */
export const EVENTS_PER_PAGE = 1000;
/** Packs checked here between two turns of the event loop (about a millisecond of reads). */
const PACKS_PER_SLICE = 1000;

/** Hub refusals of a product rather than of one event: one answers the other events of that product. */
const PRODUCT_REFUSALS = new Set(['HUB_WRONG_MARKET']);

export interface ChangeAllOptions {
  /** Told how many packs are decided after each step (a job records its progress; it may throw to stop). */
  progress?: (decided: number) => void | Promise<void>;
  /** Whether the node serves from its replica now; asked before every decision (503 `NODE_NOT_SERVING` when not). */
  serving?: () => boolean;
}

/** A change checked here that the hub is to decide: where its answer goes, and its key by transaction id. */
interface ToHub {
  index: number;
  key: string;
  event: PendingEvent;
}

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
    const [outcome] = await this.changeAll(op, [{ txId, q }], caller, today, now);
    return outcome!;
  }

  /**
   * Decides `op` on each pack of a request, answers in request order (docs/pharmacy.md, "Bulk
   * requests and jobs"). Every pack is checked here first, as a single change is: a repeated
   * transaction id gets its recorded answer, an unknown or inactive pack is refused with its
   * alert (all the request's alerts in one durable write), a pack with a change waiting for the
   * hub is refused as such, and the answers decided here are kept in one commit. The packs left
   * go to the hub in pages of {@link EVENTS_PER_PAGE}, one signed request per page, and each
   * page's answers are kept in one commit; `progress` hears how many packs are decided after
   * each. Once the hub cannot be reached (or asks the node to wait), the packs not yet decided are
   * kept in the outbox in one commit and answered `pending`, without trying the hub again per page.
   */
  async changeAll(
    op: ChangeRequest['op'],
    items: readonly { txId: string; q: PackQuery }[],
    caller: Caller,
    today: string,
    now = Date.now(),
    options: ChangeAllOptions = {},
  ): Promise<ChangeOutcome[]> {
    const { progress } = options;
    /** Decisions are made only on a replica the node serves from (not one being loaded or resynchronised). */
    const mustServe = () => {
      if (options.serving && !options.serving()) {
        throw new NotServing('the replica is being resynchronised; the packs not decided yet wait');
      }
    };
    mustServe();
    const outcomes: ChangeOutcome[] = new Array(items.length);
    /** Answers decided here, to be kept by transaction id. */
    const decidedHere: number[] = [];
    const alerts: { index: number; code: AlertCode; returnCode: ReturnCode; detail: string; pack: PackQuery }[] = [];
    const toHub: ToHub[] = [];
    /** A transaction id seen earlier in this request is answered as the earlier pack (after it is). */
    const firstOf = new Map<string, number>();
    const repeats: { index: number; first: number }[] = [];
    const { clientId, location, role } = caller;
    for (const [index, { txId, q }] of items.entries()) {
      if (index > 0 && index % PACKS_PER_SLICE === 0) {
        await setImmediate();
        mustServe();
      }
      const first = firstOf.get(txId);
      if (first !== undefined) {
        repeats.push({ index, first });
        continue;
      }
      firstOf.set(txId, index);
      const key = resultKey({ clientId, txId });
      const earlier = this.results.get(key);
      // A transaction id answers one request: never with another pack's answer (docs/domain.md §6).
      if (earlier) {
        outcomes[index] = earlier.request === requestOf(q, op) ? earlier.outcome : txIdReused(txId, q, op);
        continue;
      }
      const event: PendingEvent = { txId, clientId, ...q, op, at: now, token: caller.token };
      const v = verifyPack(q, this.replica, today);
      if (v.alert) {
        outcomes[index] = { ...base(event), outcome: 'refused', code: v.returnCode, detail: v.detail };
        alerts.push({ index, code: v.alert, returnCode: v.returnCode, detail: v.detail, pack: q });
        decidedHere.push(index);
        continue;
      }
      // Not kept as the request's answer: once the hub has decided, the same request is taken.
      const waiting = this.pendingPacks.of(q.productCode, q.serial);
      if (waiting) {
        outcomes[index] = changePending(event, waiting.op);
        continue;
      }
      const local = decideLocally(q, this.replica, today, { op, clientId, location, role, at: now });
      if (!local.accepted) {
        outcomes[index] = {
          ...base(event),
          outcome: 'refused',
          code: local.code,
          state: local.state,
          detail: local.detail,
        };
        if (local.alert) {
          alerts.push({ index, code: local.alert, returnCode: 'DECOMMISSIONED', detail: local.detail, pack: q });
        }
        decidedHere.push(index);
        continue;
      }
      toHub.push({ index, key, event });
    }
    mustServe();
    // Raised as of the request (a job may run later), which its token covers.
    const raised = await this.alerts.raiseAll(
      alerts.map(({ index: _index, ...a }) => a),
      caller,
      new Date(now),
    );
    for (const [i, a] of alerts.entries()) outcomes[a.index]!.alert = { code: a.code, id: raised[i]!.id };
    if (decidedHere.length > 0) {
      const kept = await this.keep(
        clientId,
        decidedHere.map((i) => outcomes[i]!),
        op,
      );
      for (const [j, i] of decidedHere.entries()) outcomes[i] = kept[j]!;
    }
    let decided = items.length - toHub.length;
    await progress?.(decided);

    for (let start = 0; start < toHub.length; start += EVENTS_PER_PAGE) {
      const page = toHub.slice(start, start + EVENTS_PER_PAGE);
      const { answered, unreachable } = await this.decideAtHub(page);
      const kept = answered.length > 0 ? await this.keep(clientId, answered, op) : [];
      for (const [i, outcome] of kept.entries()) outcomes[page[i]!.index] = outcome;
      decided += answered.length;
      if (unreachable) {
        const rest = toHub.slice(start + answered.length);
        for (const [i, outcome] of (await this.keepForLater(rest, unreachable)).entries()) {
          outcomes[rest[i]!.index] = outcome;
        }
        decided += rest.length;
        await progress?.(decided);
        break;
      }
      await progress?.(decided);
    }
    for (const { index, first } of repeats) {
      const { txId, q } = items[index]!;
      outcomes[index] =
        requestOf(q, op) === requestOf(items[first]!.q, op) ? outcomes[first]! : txIdReused(txId, q, op);
    }
    return outcomes;
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
   * Sends one page to the hub. A refusal of the whole page (one event the hub will not take, say
   * a product not sold in this market) sends its events one at a time, so each gets its own
   * answer. Answers the events decided, in order; `unreachable` when the hub could not be reached
   * (or asked to wait) before the rest were.
   */
  private async decideAtHub(
    page: ToHub[],
  ): Promise<{ answered: ChangeOutcome[]; unreachable?: Error; refusal?: HubRefused }> {
    try {
      const results = await this.hub.sendEvents(page.map((p) => hubEvent(p.event)));
      return {
        answered: await this.outcomesOf(
          page.map((p) => p.event),
          results,
        ),
      };
    } catch (err) {
      if (err instanceof HubRefused) {
        // Refused for the node's certificate: the route answers as every later call.
        if (err.certificateRefused) throw err;
        if (err.final && page.length === 1) return { answered: [refusedByHub(page[0]!.event, err)], refusal: err };
        if (err.final) {
          // Each event alone; a refusal of a product (not sold in this market) answers the page's
          // other events of that product without asking again.
          const answered: ChangeOutcome[] = [];
          const refusedProducts = new Map<string, HubRefused>();
          for (const p of page) {
            const known = refusedProducts.get(p.event.productCode);
            if (known) {
              answered.push(refusedByHub(p.event, known));
              continue;
            }
            const alone = await this.decideAtHub([p]);
            answered.push(...alone.answered);
            if (alone.unreachable) return { answered, unreachable: alone.unreachable };
            if (alone.refusal && PRODUCT_REFUSALS.has(alone.refusal.hubCode)) {
              refusedProducts.set(p.event.productCode, alone.refusal);
            }
          }
          return { answered };
        }
      } else if (!(err instanceof HubUnavailable)) throw err;
      // Unreachable, or asked to wait (408, 429), or the node's signature refused: the outbox retries.
      return { answered: [], unreachable: err };
    }
  }

  /**
   * Keeps a client's answers by their transaction ids, in one commit, and returns them as kept. A
   * transaction id that answers another request by now (a concurrent request of the same client
   * with the same id got there first) keeps its answer: this one is answered `TX_ID_REUSED`.
   */
  private async keep(clientId: string, outcomes: ChangeOutcome[], op: ChangeRequest['op']): Promise<ChangeOutcome[]> {
    const kept: ChangeOutcome[] = [];
    await this.store.transaction(() => {
      kept.length = 0;
      for (const o of outcomes) {
        const key = resultKey({ clientId, txId: o.txId });
        const request = requestOf(o, op);
        const earlier = this.results.get(key);
        if (earlier && earlier.request !== request) {
          const q = { productCode: o.productCode, serial: o.serial, batch: o.batch ?? '', expiry: o.expiry ?? '' };
          kept.push(txIdReused(o.txId, q, op));
          continue;
        }
        this.results.putSync(key, { outcome: o, request });
        kept.push(o);
      }
    });
    return kept;
  }

  /**
   * Keeps the changes in the outbox and marks their packs pending here, in one durable write;
   * until the hub decides, `pending` is each request's answer (also by its transaction id,
   * `answer`). A pack already marked (another request kept while this one waited for the hub, or
   * an earlier pack of the same bulk) gets `CHANGE_PENDING`.
   */
  private async keepForLater(changes: ToHub[], err: Error): Promise<ChangeOutcome[]> {
    const outcomes: ChangeOutcome[] = [];
    const marked: ToHub[] = [];
    await this.store.transaction(() => {
      outcomes.length = 0;
      marked.length = 0;
      for (const c of changes) {
        const { event, key } = c;
        const earlier = this.results.get(key);
        if (earlier && earlier.request !== requestOf(event, event.op)) {
          outcomes.push(txIdReused(event.txId, event, event.op));
          continue;
        }
        const other = this.pendingPacks.markUnlessMarked(event.productCode, event.serial, { key, op: event.op });
        if (other) {
          outcomes.push(other.key === key ? pendingOutcome(event, event.op) : changePending(event, other.op));
          continue;
        }
        this.outbox.putSync(`${String(event.at).padStart(15, '0')}|${key}`, event);
        this.results.putSync(key, kept(event, pendingOutcome(event, event.op)));
        outcomes.push(pendingOutcome(event, event.op));
        marked.push(c);
      }
    });
    for (const { event, key } of marked)
      this.pendingPacks.marked(event.productCode, event.serial, { key, op: event.op });
    this.logger.warn(
      { changes: changes.length, txIds: changes.slice(0, 5).map((c) => c.event.txId), err: err.message },
      'hub unreachable; state changes kept for later',
    );
    return outcomes;
  }

  private async deliver(page: { key: string; value: PendingEvent }[]): Promise<void> {
    const results = await this.hub.sendEvents(page.map((e) => hubEvent(e.value)));
    const outcomes = await this.outcomesOf(
      page.map((e) => e.value),
      results,
      true,
    );
    await this.store.transaction(() => {
      for (const [i, e] of page.entries()) {
        this.results.putSync(resultKey(e.value), kept(e.value, outcomes[i]!));
        this.pendingPacks.release(e.value.productCode, e.value.serial, resultKey(e.value));
      }
    });
  }

  /**
   * The answers to events the hub decided, with the alerts its answers call for raised in one
   * durable write per caller: an alert the hub names, or (`late`, for a change kept offline) a
   * refusal the node could not foresee, a conflict (another market changed the pack first).
   */
  private async outcomesOf(events: PendingEvent[], results: PackEventResult[], late = false): Promise<ChangeOutcome[]> {
    const outcomes: ChangeOutcome[] = [];
    /** Alerts to raise, by the request they concern (its token and time). */
    const alerts = new Map<
      string,
      { caller: PendingEvent; items: { index: number; code: AlertCode; detail: string }[] }
    >();
    for (const [index, e] of events.entries()) {
      const r = results[index]!;
      outcomes.push({
        ...base(e),
        outcome: r.accepted ? 'accepted' : 'refused',
        code: r.code,
        ...(r.state ? { state: r.state } : {}),
        detail: r.detail,
      });
      const code = r.alert ?? (late && !r.accepted && r.code !== 'OFFLINE_WINDOW_PASSED' ? 'A24' : undefined);
      if (!code) continue;
      const group = `${e.token}|${e.at}`;
      if (!alerts.has(group)) alerts.set(group, { caller: e, items: [] });
      alerts.get(group)!.items.push({ index, code, detail: `state change ${e.op} refused by the hub: ${r.detail}` });
    }
    for (const { caller, items } of alerts.values()) {
      // Raised as of the request they concern, which its token covers.
      const raised = await this.alerts.raiseAll(
        items.map(({ code, detail, index }) => {
          const e = events[index]!;
          const pack = { productCode: e.productCode, serial: e.serial, batch: e.batch, expiry: e.expiry };
          return { code, returnCode: 'DECOMMISSIONED' as const, detail, pack };
        }),
        caller,
        new Date(caller.at),
      );
      for (const [i, { index, code }] of items.entries()) outcomes[index]!.alert = { code, id: raised[i]!.id };
    }
    return outcomes;
  }
}
