import { createHmac } from 'node:crypto';

/**
 * Who raised an alert, as the owner of its product may read it (docs/domain.md §5, "Who raised
 * an alert"): a pseudonymous reference to the client, the same for all its alerts on one owner's
 * products and another for each owner, so an owner sees that one reporter raised several alerts,
 * and no two owners can match their reporters.
 *
 *   reference = base64url(HMAC-SHA256(key, owner ‖ 0x00 ‖ clientId)[0..16])
 *
 * An organisation id has no NUL (common/src/vocabulary.ts `isOrganisationId`), so the pair is read
 * one way only. 128 bits: no two clients of a hub share a reference in practice. Without the key,
 * a reference cannot be tied to a client id, even by someone who knows or guesses client ids:
 * the key is what keeps the pseudonym. It lives in the hub store (HubStore `reporter-key`),
 * which no caller of the hub reads; whoever holds the store can read `raisedBy` anyway.
 */
export function reporterReference(key: Buffer, owner: string, clientId: string): string {
  return createHmac('sha256', key).update(`${owner}\u0000${clientId}`).digest().subarray(0, 16).toString('base64url');
}
