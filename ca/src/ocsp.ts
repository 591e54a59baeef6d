import { createHash } from 'node:crypto';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import { REVOCATION_REASONS, type RevocationReason } from './crl.ts';
import {
  children,
  contentOf,
  decodeOid,
  enumerated,
  expectTag,
  explicit,
  generalizedTime,
  octetString,
  oid,
  rawOf,
  readRoot,
  sequence,
  type Tlv,
  tlv,
} from './der.ts';
import { DerError } from './errors.ts';
import type { CertRecord } from './inventory.ts';
import type { Signer } from './signer.ts';

/** What the responder knows about one serial of its issuer. */
export type SerialStatus =
  | { status: 'good' }
  | { status: 'revoked'; revokedAt: number; reason: RevocationReason }
  | { status: 'unknown' };

/** The status of the inventory's record of a serial: unknown when the CA has none. */
export function serialStatusOf(record: CertRecord | undefined): SerialStatus {
  if (!record) return { status: 'unknown' };
  if (record.revokedAt !== undefined) {
    return { status: 'revoked', revokedAt: record.revokedAt, reason: record.revocationReason ?? 'unspecified' };
  }
  return { status: 'good' };
}

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
 * An RFC 6960 responder for one issuing CA: parses requests with a small DER reader, answers each CertID
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
    let request: ParsedRequest;
    try {
      request = parseOcspRequest(requestDer);
    } catch {
      return errorResponse(MALFORMED_REQUEST);
    }
    try {
      const singles = request.certIds.map((certId) => this.singleResponse(certId, now));
      const responseData = sequence(
        this.responderId,
        generalizedTime(now),
        sequence(...singles),
        ...(request.nonce ? [explicit(1, sequence(request.nonce))] : []),
      );
      const basic = this.identity.signer.signed(responseData);
      return sequence(enumerated(0), explicit(0, sequence(oid(OID_OCSP_BASIC), octetString(basic))));
    } catch {
      return errorResponse(INTERNAL_ERROR);
    }
  }

  private singleResponse(certId: CertId, now: Date): Buffer {
    const hash = HASH_BY_OID[certId.hashOid];
    const ours = hash ? this.issuerHashes.get(hash) : undefined;
    const sameIssuer = ours?.name.equals(certId.issuerNameHash) === true && ours.key.equals(certId.issuerKeyHash);
    const state: SerialStatus =
      sameIssuer && certId.serial !== undefined ? this.lookup(certId.serial) : { status: 'unknown' };
    return sequence(
      certId.raw,
      certStatus(state),
      generalizedTime(now),
      explicit(0, generalizedTime(new Date(now.getTime() + this.validityMs))),
    );
  }
}

interface CertId {
  /** The CertID exactly as requested, echoed in the response. */
  raw: Buffer;
  hashOid: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** The serial, normalised (common/src/vocabulary.ts); undefined when no certificate can have it. */
  serial: string | undefined;
}

interface ParsedRequest {
  certIds: CertId[];
  /** The nonce extension, DER, to echo. */
  nonce?: Buffer;
}

const NONCE_OID_DER = oid(OID_OCSP_NONCE);

/**
 * OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT OPTIONAL }
 * TBSRequest ::= SEQUENCE { version [0], requestorName [1], requestList SEQUENCE OF Request, requestExtensions [2] }
 * Read with the small DER reader: this is the responder's hot path, where a generic ASN.1 parse
 * cost about 0.4 ms per request (the whole budget is 0.2 ms).
 */
export function parseOcspRequest(der: Uint8Array): ParsedRequest {
  const root = readRoot(der);
  const tbs = expectTag(children(der, root)[0], 0x30, 'tbsRequest');
  const certIds: CertId[] = [];
  let nonce: Buffer | undefined;
  for (const part of children(der, tbs)) {
    if (part.tag === 0x30) {
      for (const request of children(der, part)) {
        const certId = expectTag(children(der, expectTag(request, 0x30, 'Request'))[0], 0x30, 'CertID');
        certIds.push(parseCertId(der, certId));
      }
    } else if (part.tag === 0xa2) {
      const extensions = expectTag(children(der, part)[0], 0x30, 'Extensions');
      for (const ext of children(der, extensions)) {
        const id = expectTag(children(der, ext)[0], 0x06, 'extnID');
        if (rawOf(der, id).equals(NONCE_OID_DER)) nonce = Buffer.from(rawOf(der, ext));
      }
    }
  }
  if (certIds.length === 0) throw new DerError('DER_VALUE_INVALID', 'empty requestList');
  return nonce ? { certIds, nonce } : { certIds };
}

function parseCertId(der: Uint8Array, certId: Tlv): CertId {
  const [alg, nameHash, keyHash, serial] = children(der, certId);
  const algOid = expectTag(children(der, expectTag(alg, 0x30, 'hashAlgorithm'))[0], 0x06, 'hash OID');
  return {
    raw: Buffer.from(rawOf(der, certId)),
    hashOid: decodeOid(contentOf(der, algOid)),
    issuerNameHash: contentOf(der, expectTag(nameHash, 0x04, 'issuerNameHash')),
    issuerKeyHash: contentOf(der, expectTag(keyHash, 0x04, 'issuerKeyHash')),
    serial: serialOf(contentOf(der, expectTag(serial, 0x02, 'serialNumber'))),
  };
}

/** CertificateSerialNumber ::= INTEGER, positive (RFC 5280 §4.1.2.2): a negative one names no certificate. */
function serialOf(content: Buffer): string | undefined {
  return content.length > 0 && content[0]! < 0x80 ? normaliseSerial(content.toString('hex')) : undefined;
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
