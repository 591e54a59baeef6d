import type { FastifyInstance } from 'fastify';
import type { components } from '../../../openapi/generated/hub.ts';
import type { ActorProof, EventRefusal } from '../actors.ts';
import type { ClientIdentifier, ClientIdentity } from '../client-identity.ts';
import { BadRequest, WrongMarket } from '../errors.ts';
import type { HubStore, StoredAlert } from '../hub-store.ts';
import { hubContract, writeOf } from '../master-data.ts';
import { RateLimiter } from '../oauth/rate-limit.ts';
import { applyPackEvent, type ForwardedEvent, type PackEvent, type PackEventResult } from '../pack-events.ts';
import type { SignedWrite } from '../signed-write.ts';
import { identifyCallers } from './caller.ts';

type ForwardedAlert = components['schemas']['Alert'];

interface NodeRoutesOptions {
  store: HubStore;
  identifier: ClientIdentifier;
  signedWrite: SignedWrite;
  /** Who acted: the pharmacy's access token that travels with each event and alert. */
  actors: Pick<ActorProof, 'prove'>;
}

/**
 * Alerts kept per proven client (docs/domain.md §5, "Alert floods"): a burst of 1,000, then 10 a
 * second. A node that keeps the rule sends at most a few hundred records per client a minute
 * (single alerts, then aggregated ones); one that does not, or many nodes together, cannot fill
 * the owners' alert lists with one client's scans. In memory, per gateway process.
 */
const ALERTS_PER_CLIENT = { ratePerSecond: 10, burst: 1000 };

const parseEvents = hubContract.jsonBodyParser<{ events: ForwardedEvent[] }>('postPackEvents', BadRequest);
const parseAlerts = hubContract.jsonBodyParser<{ alerts: ForwardedAlert[] }>('postAlerts', BadRequest);

/**
 * What verifier nodes send (verifier-node certificates only): the pack events and alerts of the
 * pharmacies of their market, signed and kept as evidence like the manufacturers' writes. Each
 * event is the act of the client whose token it carries (actors.ts); the hub decides each one by
 * compare-and-set inside the transaction (pack-events.ts), so the answer comes from `apply`.
 */
export async function nodeRoutes(app: FastifyInstance, o: NodeRoutesOptions): Promise<void> {
  const { store, signedWrite, actors } = o;
  identifyCallers(app, o.identifier, ['verifier-node']);
  const alertBound = new RateLimiter(ALERTS_PER_CLIENT.ratePerSecond, ALERTS_PER_CLIENT.burst);

  /** A node acts only for its market: a product the hub knows must be sold there (an unknown one is decided as unknown). */
  const soldInNodeMarket = (node: ClientIdentity, productCode: string): void => {
    const product = store.product(productCode);
    if (product && !product.markets.includes(node.market ?? ''))
      throw new WrongMarket(`Product ${productCode} is not sold in ${node.market}, the market this node serves`);
  };

  app.post(
    '/v1/packs/events',
    writeOf('postPackEvents'),
    signedWrite(async (node, body, request) => {
      const { events } = parseEvents(body);
      const now = Date.now();
      const proven: (PackEvent | PackEventResult)[] = [];
      for (const e of events) {
        soldInNodeMarket(node, e.productCode);
        const { actor, refusal } = await actors.prove(e.token, node, e.at, now);
        proven.push(
          refusal
            ? refused(e.txId, refusal)
            : { txId: e.txId, productCode: e.productCode, serial: e.serial, op: e.op, at: e.at, actor },
        );
      }
      const today = new Date(now).toISOString().slice(0, 10);
      const markets = new Set<string>();
      return {
        status: 200,
        markets,
        apply() {
          const results: PackEventResult[] = proven.map((e) => {
            if (!('actor' in e)) return e;
            const r = applyPackEvent(store, e, today);
            if (r.accepted) for (const m of store.product(e.productCode)?.markets ?? []) markets.add(m);
            return r;
          });
          request.log.debug({ node: node.serial, events: events.length }, 'pack events decided');
          return { results };
        },
      };
    }),
  );

  app.post(
    '/v1/alerts',
    writeOf('postAlerts'),
    signedWrite(async (node, body, request) => {
      const { alerts } = parseAlerts(body);
      const receivedAt = new Date().toISOString();
      const now = Date.now();
      const accepted: StoredAlert[] = [];
      const limited = new Map<string, number>();
      for (const { token, ...a } of alerts) {
        if (a.market !== node.market)
          throw new WrongMarket(`This node serves ${node.market}; alert ${a.id} is for ${a.market}`);
        soldInNodeMarket(node, a.pack.productCode);
        const raisedAt = Date.parse(a.raisedAt);
        const { actor, refusal } = await actors.prove(token, node, raisedAt, now);
        if (refusal) continue;
        if (!alertBound.take(actor.clientId, now)) {
          limited.set(actor.clientId, (limited.get(actor.clientId) ?? 0) + 1);
          continue;
        }
        const owner = store.product(a.pack.productCode)?.owner;
        const raisedBy = { clientId: actor.clientId, org: actor.org, location: actor.location, role: actor.role };
        // The time as the hub read it, not the node's spelling of it.
        accepted.push({
          ...a,
          raisedAt: new Date(raisedAt).toISOString(),
          raisedBy,
          receivedAt,
          ...(owner ? { owner } : {}),
        });
      }
      if (limited.size > 0)
        request.log.warn(
          { node: node.serial, limited: Object.fromEntries(limited) },
          'alerts past their client bound not kept',
        );
      const notLimited = alerts.length - [...limited.values()].reduce((n, c) => n + c, 0);
      return {
        status: 200,
        apply() {
          let stored = 0;
          for (const a of accepted) if (store.addAlert(a)) stored++;
          return {
            stored,
            duplicates: accepted.length - stored,
            refused: notLimited - accepted.length,
            limited: alerts.length - notLimited,
          };
        },
      };
    }),
  );
}

const refused = (txId: string, r: EventRefusal): PackEventResult => ({
  txId,
  accepted: false,
  code: r.code,
  detail: r.detail,
});
