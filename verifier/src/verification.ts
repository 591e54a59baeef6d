import { expiryDate } from '../../common/src/gs1.ts';
import {
  type ChangeDecision,
  type ChangeRequest,
  decideChange,
  type InactiveReason,
  inactiveReasonOf,
  type PackState,
} from '../../common/src/pack-rules.ts';
import type { ReplicaBatch, ReplicaPack, ReplicaProduct } from './replica.ts';

/** A pack's unique identifier as scanned. */
export interface PackQuery {
  productCode: string;
  serial: string;
  batch: string;
  expiry: string;
}

/** The alert codes of docs/domain.md §5 (as the European hub numbers them). */
export type AlertCode = 'A2' | 'A3' | 'A7' | 'A24' | 'A52' | 'A68';

export type ReturnCode =
  | 'ACTIVE'
  | 'DECOMMISSIONED'
  | 'INACTIVE'
  | 'PRODUCT_UNKNOWN'
  | 'BATCH_UNKNOWN'
  | 'SERIAL_UNKNOWN'
  | 'BATCH_MISMATCH'
  | 'EXPIRY_MISMATCH';

export interface Verification {
  returnCode: ReturnCode;
  /** The pack state when the pack is known (ACTIVE, SUPPLIED, …). */
  state?: string;
  inactiveReason?: InactiveReason;
  alert?: AlertCode;
  detail: string;
}

/** What verification reads from the replica. */
export interface ReplicaLookup {
  product(code: string): ReplicaProduct | undefined;
  batch(code: string, batch: string): ReplicaBatch | undefined;
  pack(code: string, serial: string): ReplicaPack | undefined;
}

/**
 * A lookup that reads each product and batch once. A bulk request names many packs of few
 * products and batches; decoding those again for every pack would cost more than the pack reads.
 */
export function memoised(lookup: ReplicaLookup): ReplicaLookup {
  const products = new Map<string, ReplicaProduct | undefined>();
  const batches = new Map<string, ReplicaBatch | undefined>();
  return {
    product(code) {
      if (!products.has(code)) products.set(code, lookup.product(code));
      return products.get(code);
    },
    batch(code, batch) {
      const key = `${code}|${batch}`;
      if (!batches.has(key)) batches.set(key, lookup.batch(code, batch));
      return batches.get(key);
    },
    pack: (code, serial) => lookup.pack(code, serial),
  };
}

/**
 * Verifies a scanned pack against the market's replica (docs/domain.md §2, §5): unknown or mismatching
 * identifiers raise an alert; a pack of a recalled, withdrawn or expired batch answers with its
 * reason and no alert; a decommissioned pack answers with its state.
 * `today` is the date (YYYY-MM-DD) against which expiry is judged.
 */
export function verifyPack(q: PackQuery, replica: ReplicaLookup, today: string): Verification {
  const product = replica.product(q.productCode);
  if (!product) {
    // Not registered for this market: to the pharmacy this is a pack that does not exist.
    return {
      returnCode: 'PRODUCT_UNKNOWN',
      alert: 'A3',
      detail: `product ${q.productCode} is not known in this market`,
    };
  }
  const pack = replica.pack(q.productCode, q.serial);
  if (!pack) {
    return replica.batch(q.productCode, q.batch)
      ? { returnCode: 'SERIAL_UNKNOWN', alert: 'A3', detail: `serial ${q.serial} is not registered for this product` }
      : { returnCode: 'BATCH_UNKNOWN', alert: 'A2', detail: `batch ${q.batch} is not registered for this product` };
  }
  if (pack.b !== q.batch) {
    return {
      returnCode: 'BATCH_MISMATCH',
      state: pack.s,
      alert: 'A68',
      detail: `the pack belongs to another batch than ${q.batch}`,
    };
  }
  const batch = replica.batch(q.productCode, pack.b);
  // Compared as dates: YYMM00 is the month's last day, so 291200 and 291231 are one expiry
  // (docs/domain.md §1). The batch's date was read the same way when it was registered.
  if (batch && expiryDate(q.expiry, new Date(today)) !== batch.expiryDate) {
    return {
      returnCode: 'EXPIRY_MISMATCH',
      state: pack.s,
      alert: 'A52',
      detail: `the batch expiry is not ${q.expiry}`,
    };
  }
  const inactive = inactiveReasonOf(product.status, batch, today);
  if (inactive)
    return { returnCode: 'INACTIVE', state: pack.s, inactiveReason: inactive, detail: inactiveDetail(inactive, batch) };
  if (pack.s !== 'ACTIVE')
    return { returnCode: 'DECOMMISSIONED', state: pack.s, detail: `the pack is ${pack.s.toLowerCase()}` };
  return { returnCode: 'ACTIVE', state: 'ACTIVE', detail: 'the pack is active' };
}

/**
 * A change of a pack that `verifyPack` answered without an alert, judged on the replica with the
 * rules the hub applies (common/src/pack-rules.ts): the node refuses at once what the hub would.
 */
export function decideLocally(q: PackQuery, replica: ReplicaLookup, today: string, req: ChangeRequest): ChangeDecision {
  const pack = replica.pack(q.productCode, q.serial)!;
  const product = replica.product(q.productCode)!;
  const inactive = inactiveReasonOf(product.status, replica.batch(q.productCode, pack.b), today);
  const current = {
    state: pack.s as PackState,
    ...(pack.by ? { by: pack.by } : {}),
    ...(pack.at !== undefined ? { at: pack.at } : {}),
  };
  return decideChange(current, req, inactive);
}

function inactiveDetail(reason: InactiveReason, batch: ReplicaBatch | undefined): string {
  switch (reason) {
    case 'EXPIRED':
      return `the batch expired on ${batch?.expiryDate}`;
    case 'RECALLED':
      return `the batch is recalled${batch?.reason ? `: ${batch.reason}` : ''}`;
    case 'WITHDRAWN':
      return `withdrawn${batch?.reason ? `: ${batch.reason}` : ''}`;
  }
}
