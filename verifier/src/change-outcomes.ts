import type { ChangeRequest } from '../../common/src/pack-rules.ts';
import type { components as hub } from '../../openapi/generated/hub.ts';
import type { components } from '../../openapi/generated/verifier.ts';
import type { HubRefused } from './errors.ts';
import type { PackQuery } from './verification.ts';

/**
 * The answers a node gives to a state change (state-changes.ts), and the records it keeps for
 * one: the event waiting in the outbox, the answer kept by transaction id. Pure.
 */

/**
 * The answer to a change (openapi/verifier.yaml `ChangeOutcome`): accepted or refused by the hub
 * (or already here), pending when the hub was unreachable.
 */
export type ChangeOutcome = components['schemas']['ChangeOutcome'];

/** An answer kept by the client's transaction id, with the request it answered (`productCode|serial|op`). */
export interface KeptOutcome {
  outcome: ChangeOutcome;
  request: string;
}

/** A change kept while the hub is unreachable, with the token that proves who asked. */
export interface PendingEvent {
  /** The client's transaction id. */
  txId: string;
  clientId: string;
  productCode: string;
  serial: string;
  batch: string;
  expiry: string;
  op: ChangeRequest['op'];
  at: number;
  token: string;
}

export const resultKey = (e: Pick<PendingEvent, 'clientId' | 'txId'>): string => `${e.clientId}|${e.txId}`;

export const requestOf = (q: Pick<PackQuery, 'productCode' | 'serial'>, op: ChangeRequest['op']): string =>
  `${q.productCode}|${q.serial}|${op}`;

export const kept = (e: PendingEvent, outcome: ChangeOutcome): KeptOutcome => ({
  outcome,
  request: requestOf(e, e.op),
});

export function txIdReused(txId: string, q: PackQuery, op: ChangeRequest['op']): ChangeOutcome {
  return {
    txId,
    operation: op,
    ...q,
    outcome: 'refused',
    code: 'TX_ID_REUSED',
    detail: `transaction id ${txId} was used by this client for another request`,
  };
}

/** What every answer repeats of its request, so that a signed answer covers it (routes/pharmacy.ts). */
export const base = (e: PendingEvent) => ({
  txId: e.txId,
  operation: e.op,
  productCode: e.productCode,
  serial: e.serial,
  batch: e.batch,
  expiry: e.expiry,
});

export function pendingOutcome(e: PendingEvent, op: ChangeRequest['op']): ChangeOutcome {
  return {
    ...base(e),
    outcome: 'pending',
    code: 'PENDING',
    detail: `the hub is unreachable; the ${op} is stored and will be sent`,
  };
}

export function refusedByHub(e: PendingEvent, refusal: HubRefused): ChangeOutcome {
  return {
    ...base(e),
    outcome: 'refused',
    code: refusal.hubCode,
    // The hub's own words for it, not its whole answer (paths, evidence numbers).
    detail: `the hub refused the change: ${refusal.hubDetail ?? refusal.hubCode}`,
  };
}

export function changePending(e: PendingEvent, op: ChangeRequest['op']): ChangeOutcome {
  return {
    ...base(e),
    outcome: 'refused',
    code: 'CHANGE_PENDING',
    detail: `a ${op} of this pack at this node is waiting for the hub's decision; try again once it is decided`,
  };
}

/** The event as the hub takes it (openapi/hub.yaml PackEvent): the request and the caller's token. */
export function hubEvent(e: PendingEvent): hub['schemas']['PackEvent'] {
  return { txId: e.txId, productCode: e.productCode, serial: e.serial, op: e.op, at: e.at, token: e.token };
}
