import { createHash } from 'node:crypto';
import { bytes, pkijs } from '../../common/src/pki.ts';
import { REVOCATION_REASONS, type RevocationReason } from './crl.ts';
import { enumerated, explicit, generalizedTime, octetString, oid, sequence, tlv } from './der.ts';
import type { Signer } from './signer.ts';

/** What the responder knows about one serial of its issuer. */
export type SerialStatus =
  | { status: 'good' }
  | { status: 'revoked'; revokedAt: number; reason: RevocationReason }
  | { status: 'unknown' };

export interface ResponderIdentity {
  /** The issuer's subject Name, DER. */
  issuerName: Buffer;
  /** The issuer's subjectPublicKey BIT STRING contents. */
  issuerKey: Buffer;
  signer: Signer;
}

const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OID_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';
const HASH_BY_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** RFC 6960 §4.2.1 OCSPResponseStatus values used here. */
const MALFORMED_REQUEST = 1;
const INTERNAL_ERROR = 2;

/**
 * An RFC 6960 responder for one issuing CA: parses requests with pkijs, answers each CertID
 * good/revoked/unknown from a live status lookup, echoes the nonce, signs as the CA (responder ID by key).
 */
export class OcspResponder {
  private readonly issuerHashes = new Map<string, { name: Buffer; key: Buffer }>();
  private readonly responderId: Buffer;

  constructor(
    private readonly identity: ResponderIdentity,
    private readonly lookup: (serialHex: string) => SerialStatus,
    /** How long a response may be cached by relying parties. */
    private readonly validityMs = 5 * 60_000,
  ) {
    for (const hash of Object.values(HASH_BY_OID)) {
      this.issuerHashes.set(hash, {
        name: createHash(hash).update(identity.issuerName).digest(),
        key: createHash(hash).update(identity.issuerKey).digest(),
      });
    }
    this.responderId = tlv(0xa2, octetString(createHash('sha1').update(identity.issuerKey).digest()));
  }

  /** Answers a DER OCSPRequest with a DER OCSPResponse; never throws. */
  respond(requestDer: Uint8Array, now = new Date()): Buffer {
    let request: pkijs.OCSPRequest;
    try {
      request = pkijs.OCSPRequest.fromBER(bytes(requestDer));
    } catch {
      return errorResponse(MALFORMED_REQUEST);
    }
    try {
      const list = request.tbsRequest.requestList;
      if (list.length === 0) return errorResponse(MALFORMED_REQUEST);
      const singles = list.map((r) => this.singleResponse(r.reqCert, now));
      const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === OID_OCSP_NONCE);
      const responseData = sequence(
        this.responderId,
        generalizedTime(now),
        sequence(...singles),
        ...(nonce ? [explicit(1, sequence(Buffer.from(nonce.toSchema().toBER())))] : []),
      );
      const basic = this.identity.signer.signed(responseData);
      return sequence(enumerated(0), explicit(0, sequence(oid(OID_OCSP_BASIC), octetString(basic))));
    } catch {
      return errorResponse(INTERNAL_ERROR);
    }
  }

  private singleResponse(certId: pkijs.CertID, now: Date): Buffer {
    const hash = HASH_BY_OID[certId.hashAlgorithm.algorithmId];
    const ours = hash ? this.issuerHashes.get(hash) : undefined;
    const serial = Buffer.from(certId.serialNumber.valueBlock.valueHexView)
      .toString('hex')
      .replace(/^(00)+(?=.)/, '');
    const sameIssuer =
      ours?.name.equals(certId.issuerNameHash.valueBlock.valueHexView) === true &&
      ours.key.equals(certId.issuerKeyHash.valueBlock.valueHexView);
    const state: SerialStatus = sameIssuer ? this.lookup(serial) : { status: 'unknown' };
    return sequence(
      Buffer.from(certId.toSchema().toBER()),
      certStatus(state),
      generalizedTime(now),
      explicit(0, generalizedTime(new Date(now.getTime() + this.validityMs))),
    );
  }
}

function certStatus(state: SerialStatus): Buffer {
  switch (state.status) {
    case 'good':
      return Buffer.from([0x80, 0x00]);
    case 'unknown':
      return Buffer.from([0x82, 0x00]);
    case 'revoked':
      return tlv(
        0xa1,
        Buffer.concat([
          generalizedTime(new Date(state.revokedAt)),
          explicit(0, enumerated(REVOCATION_REASONS[state.reason])),
        ]),
      );
  }
}

function errorResponse(status: number): Buffer {
  return sequence(enumerated(status));
}
