import { enumerated, explicit, extension, sequence, smallInteger, time, tlv, unsignedInteger } from './der.ts';
import { ReasonInvalid } from './errors.ts';
import type { Signer } from './signer.ts';

/** RFC 5280 §5.3.1 reason codes that this CA accepts (revocation is final, so no certificateHold). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export function parseReason(name: string): RevocationReason {
  if (!Object.hasOwn(REVOCATION_REASONS, name)) {
    throw new ReasonInvalid(
      `Unknown revocation reason "${name}"; expected one of ${Object.keys(REVOCATION_REASONS).join(', ')}`,
    );
  }
  return name as RevocationReason;
}

export interface RevokedEntry {
  /** Serial number, hex. */
  serial: string;
  revokedAt: number;
  reason: RevocationReason;
}

export interface CrlInput {
  /** The issuer's Name, DER, exactly as in its certificate's subject. */
  issuerName: Buffer;
  authorityKeyId: Buffer;
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: Iterable<RevokedEntry>;
  signer: Signer;
}

const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const OID_CRL_NUMBER = '2.5.29.20';
const OID_REASON_CODE = '2.5.29.21';

/**
 * Builds and signs an X.509 v2 CRL (RFC 5280 §5). Written straight to DER: 100,000 entries take
 * tens of milliseconds this way, against tens of seconds through a generic ASN.1 object model.
 */
export function buildCrl(input: CrlInput): Buffer {
  const revoked: Buffer[] = [];
  for (const entry of input.entries) revoked.push(revokedCertificate(entry));
  const extensions = sequence(
    extension(OID_AUTHORITY_KEY_ID, sequence(tlv(0x80, input.authorityKeyId))),
    extension(OID_CRL_NUMBER, smallInteger(input.crlNumber)),
  );
  const tbs = sequence(
    smallInteger(1), // v2
    input.signer.algorithmIdentifier,
    input.issuerName,
    time(input.thisUpdate),
    time(input.nextUpdate),
    ...(revoked.length > 0 ? [sequence(...revoked)] : []),
    explicit(0, extensions),
  );
  return input.signer.signed(tbs);
}

function revokedCertificate(entry: RevokedEntry): Buffer {
  const parts = [unsignedInteger(Buffer.from(entry.serial, 'hex')), time(new Date(entry.revokedAt))];
  // RFC 5280 §5.3.1: leave the reason out rather than writing "unspecified".
  const code = REVOCATION_REASONS[entry.reason];
  if (code !== 0) parts.push(sequence(extension(OID_REASON_CODE, enumerated(code))));
  return sequence(...parts);
}
