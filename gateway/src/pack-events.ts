import {
  type ChangeRequest,
  decideChange,
  inactiveReasonOf,
  type PackState,
  type Role,
} from '../../common/src/pack-rules.ts';
import { batchKey, type HubStore, packKey } from './hub-store.ts';

/** A state change a verifier node sends on behalf of a pharmacy. */
export interface PackEvent {
  txId: string;
  productCode: string;
  serial: string;
  op: ChangeRequest['op'];
  clientId: string;
  location: string;
  org: string;
  role: Role;
  /** Epoch ms when the pharmacy asked (offline events arrive later). */
  at: number;
}

export interface PackEventResult {
  txId: string;
  accepted: boolean;
  code: string;
  state?: string;
  alert?: 'A7' | 'A24' | 'A3';
  detail: string;
}

/**
 * The hub decides every pack state change (compare-and-set per pack inside the write
 * transaction, which serialises them), idempotently by client transaction id, and publishes an
 * accepted change to every market of the product. Inside a write transaction.
 */
export function applyPackEvent(store: HubStore, e: PackEvent, today: string): PackEventResult {
  const seen = store.packTx.get(e.txId) as PackEventResult | undefined;
  if (seen) return seen;
  const result = decide(store, e, today);
  store.packTx.putSync(e.txId, result as unknown as Record<string, unknown>);
  return result;
}

function decide(store: HubStore, e: PackEvent, today: string): PackEventResult {
  const product = store.products.get(e.productCode);
  const key = packKey(e.productCode, e.serial);
  const pack = store.packs.get(key);
  if (!product || !pack)
    return { txId: e.txId, accepted: false, code: 'SERIAL_UNKNOWN', alert: 'A3', detail: 'no such pack' };
  const batch = store.batches.get(batchKey(e.productCode, pack.b));
  const inactive = inactiveReasonOf(product.status, batch, today);
  const current = {
    state: pack.s as PackState,
    ...(pack.by ? { by: pack.by } : {}),
    ...(pack.at !== undefined ? { at: pack.at } : {}),
  };
  const decision = decideChange(current, e, inactive);
  if (decision.accepted) {
    const decommissioned = decision.state !== 'ACTIVE';
    const updated = {
      b: pack.b,
      s: decision.state,
      ...(decommissioned ? { by: { clientId: e.clientId, location: e.location }, at: e.at } : {}),
    };
    store.packs.putSync(key, updated);
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
