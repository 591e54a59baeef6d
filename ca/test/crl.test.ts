import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytes, toPem, x509 } from '../../common/src/pki.ts';
import { buildCrl, parseReason, type RevokedEntry } from '../src/crl.ts';
import { ReasonInvalid } from '../src/errors.ts';
import { Signer } from '../src/signer.ts';
import { openssl } from './fixtures.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const issuer = new x509.Name('CN=Test Issuing CA, O=packtrust');

function crlWith(entries: RevokedEntry[]) {
  return buildCrl({
    issuerName: Buffer.from(issuer.toArrayBuffer()),
    authorityKeyId: Buffer.alloc(20, 7),
    crlNumber: 300,
    thisUpdate: new Date('2026-11-01T00:00:00Z'),
    nextUpdate: new Date('2026-11-02T00:00:00Z'),
    entries,
    signer: new Signer(privateKey, 'P-256'),
  });
}

describe('buildCrl', () => {
  it('writes a signed v2 CRL that @peculiar/x509 parses and verifies, with reasons and number', async () => {
    const entries: RevokedEntry[] = Array.from({ length: 1000 }, (_, i) => ({
      serial: `${(0x40000000 + i).toString(16)}ff00ff00ff00ff00ff00ff00`,
      revokedAt: Date.UTC(2026, 9, 1) + i * 1000,
      reason: i % 2 ? 'keyCompromise' : 'unspecified',
    }));
    const der = crlWith(entries);
    const crl = new x509.X509Crl(bytes(der));
    expect(crl.entries).toHaveLength(1000);
    expect(crl.entries[1]!.serialNumber).toBe(entries[1]!.serial);
    expect(crl.entries[1]!.reason).toBe(x509.X509CrlReason.keyCompromise);
    expect(crl.entries[0]!.reason).toBeUndefined();
    expect(crl.nextUpdate?.toISOString()).toBe('2026-11-02T00:00:00.000Z');
    const pub = await crypto.subtle.importKey(
      'spki',
      publicKey.export({ type: 'spki', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['verify'],
    );
    expect(await crl.verify({ publicKey: pub as CryptoKey })).toBe(true);
    expect(openssl(['crl', '-noout', '-text'], toPem(der, 'X509 CRL')).stdout).toContain(
      'X509v3 CRL Number: \n                300',
    );
  });

  it('writes an empty CRL without a revokedCertificates list', () => {
    const text = openssl(['crl', '-noout', '-text'], toPem(crlWith([]), 'X509 CRL')).stdout;
    expect(text).toContain('No Revoked Certificates');
  });

  it('encodes serials with the high bit set as positive integers', () => {
    const der = crlWith([{ serial: 'ff01', revokedAt: Date.UTC(2026, 0, 1), reason: 'superseded' }]);
    expect(der.includes(Buffer.from([0x02, 0x03, 0x00, 0xff, 0x01]))).toBe(true);
    expect(openssl(['crl', '-noout', '-text'], toPem(der, 'X509 CRL')).stdout).toContain('Serial Number: FF01');
  });

  it('accepts the RFC 5280 reasons it supports and refuses the rest', () => {
    expect(parseReason('cessationOfOperation')).toBe('cessationOfOperation');
    expect(() => parseReason('certificateHold')).toThrow(ReasonInvalid);
    expect(() => parseReason('toString')).toThrow(ReasonInvalid);
  });
});
