import type { Actor } from '../../common/src/access-tokens.ts';
import { type ChangeRequest, decideChange, inactiveReasonOf, type PackState } from '../../common/src/pack-rules.ts';
import type { components } from '../../openapi/generated/hub.ts';
import type { HubStore, PackDecision } from './hub-store.ts';

/** A state change as a verifier node forwards it: what the pharmacy asked, and its access token. */
export type ForwardedEvent = components['schemas']['PackEvent'];

/** A state change the hub decides: the pharmacy's request, with the actor its token proved (gateway/src/actors.ts). */
export interface PackEvent {
  /** The client's own transaction id; unique per client, not globally. */
  txId: string;
  productCode: string;
  serial: string;
  op: ChangeRequest['op'];
  actor: Pick<Actor, 'clientId' | 'location' | 'role'>;
  /** Epoch ms when the pharmacy asked (offline events arrive later). */
  at: number;
}

/** The hub's answer for one event (openapi/hub.yaml `PackEventResult`). */
export type PackEventResult = PackDecision;

/**
 * The hub decides every pack state change (compare-and-set per pack inside the write
 * transaction, which serialises them), idempotently by the client's transaction id, and publishes
 * an accepted change to every market of the product. Transaction ids are scoped by the client the
 * token proved, so no one can claim another client's id. Inside a write transaction.
 */
export function applyPackEvent(store: HubStore, e: PackEvent, today: string): PackEventResult {
  const request = `${e.productCode}|${e.serial}|${e.op}`;
  const seen = store.packDecision(e.actor.clientId, e.txId);
  if (seen && seen.request === request) return seen.result;
  // A transaction id answers one request: never another pack's answer (docs/domain.md §6).
  if (seen) {
    return {
      txId: e.txId,
      accepted: false,
      code: 'TX_ID_REUSED',
      detail: `transaction id ${e.txId} was used by this client for another request`,
    };
  }
  const result = decide(store, e, today);
  store.keepPackDecision(e.actor.clientId, e.txId, { result, request });
  return result;
}

function decide(store: HubStore, e: PackEvent, today: string): PackEventResult {
  const product = store.product(e.productCode);
  const pack = store.pack(e.productCode, e.serial);
  if (!product || !pack)
    return { txId: e.txId, accepted: false, code: 'SERIAL_UNKNOWN', alert: 'A3', detail: 'no such pack' };
  const batch = store.batch(e.productCode, pack.b);
  const inactive = inactiveReasonOf(product.status, batch, today);
  const current = {
    state: pack.s as PackState,
    ...(pack.by ? { by: pack.by } : {}),
    ...(pack.at !== undefined ? { at: pack.at } : {}),
  };
  const { clientId, location, role } = e.actor;
  const decision = decideChange(current, { op: e.op, clientId, location, role, at: e.at }, inactive);
  if (decision.accepted) {
    const decommissioned = decision.state !== 'ACTIVE';
    const updated = {
      b: pack.b,
      s: decision.state,
      ...(decommissioned ? { by: { clientId, location }, at: e.at } : {}),
    };
    store.putPack(e.productCode, e.serial, updated);
    store.publish(product.markets, {
      type: 'pack-state',
      productCode: e.productCode,
      serial: e.serial,
      state: decision.state,
      ...(decommissioned ? { by: updated.by, at: e.at } : {}),
      txId: e.txId,
    });
  }
  return {
    txId: e.txId,
    accepted: decision.accepted,
    code: decision.code,
    state: decision.state,
    detail: decision.detail,
    ...(decision.alert ? { alert: decision.alert } : {}),
  };
}
