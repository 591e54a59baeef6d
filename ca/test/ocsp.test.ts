import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes, pkijs, toPem } from '../../common/src/pki.ts';
import { DerError } from '../src/errors.ts';
import { parseOcspRequest } from '../src/ocsp.ts';
import { createTestCa, openssl, opensslCsr, P256, type TestCa } from './fixtures.ts';

let t: TestCa;
let issuerPath: string;
beforeAll(async () => {
  t = await createTestCa();
  issuerPath = t.file('issuer.pem', toPem(t.ca.issuingCertificate(), 'CERTIFICATE'));
});
afterAll(() => t.cleanup());

function requestFor(serials: string[], extra: string[] = []): Buffer {
  const out = join(t.dir, `req-${Math.random()}.der`);
  const args = [
    'ocsp',
    '-issuer',
    issuerPath,
    ...serials.flatMap((s) => ['-serial', `0x${s}`]),
    ...extra,
    '-reqout',
    out,
  ];
  expect(openssl(args).status).toBe(0);
  return readFileSync(out);
}

/** The response parsed by pkijs, an implementation independent of the responder's DER writer. */
function parseResponse(der: Buffer) {
  const response = pkijs.OCSPResponse.fromBER(bytes(der));
  const basic = pkijs.BasicOCSPResponse.fromBER(bytes(response.responseBytes!.response.valueBlock.valueHexView));
  return { status: response.responseStatus.valueBlock.valueDec, basic };
}

describe('OcspResponder', () => {
  it('answers several CertIDs in one request, each with its own status, and echoes the nonce', async () => {
    const { csr } = opensslCsr(t.dir, 'a', P256);
    const good = await t.ca.issue({ csr, profile: 'manufacturer', org: 'A' }, 'test');
    const bad = await t.ca.issue({ csr, profile: 'manufacturer', org: 'B' }, 'test');
    await t.ca.revoke(bad.record.serial, 'cessationOfOperation', 'test');
    const request = requestFor([good.record.serial, bad.record.serial, '7eeeeeeeeeeeeeeeeeeeeeeeeeeeeee1']);
    const parsedRequest = parseOcspRequest(request);
    expect(parsedRequest.certIds.map((c) => c.serial)).toEqual([
      good.record.serial,
      bad.record.serial,
      '7eeeeeeeeeeeeeeeeeeeeeeeeeeeeee1',
    ]);
    expect(parsedRequest.nonce).toBeDefined();

    const { status, basic } = parseResponse(t.ca.ocsp.respond(request));
    expect(status).toBe(0);
    const tags = basic.tbsResponseData.responses.map((r) => r.certStatus.idBlock.tagNumber);
    expect(tags).toEqual([0, 1, 2]); // good, revoked, unknown
    const nonce = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2');
    expect(Buffer.from(nonce!.toSchema().toBER()).equals(parsedRequest.nonce!)).toBe(true);
    const issuerKey = createPublicKey({ key: toPem(t.ca.issuingCertificate(), 'CERTIFICATE'), format: 'pem' });
    const signature = Buffer.from(basic.signature.valueBlock.valueHexView);
    expect(verify('sha256', basic.tbsResponseData.tbsView, issuerKey, signature)).toBe(true);
  });

  it('answers unknown for a CertID of another issuer', async () => {
    const other = await createTestCa();
    try {
      const { csr } = opensslCsr(other.dir, 'x', P256);
      const foreign = await other.ca.issue({ csr, profile: 'manufacturer', org: 'X' }, 'test');
      const otherIssuer = other.file('issuer.pem', toPem(other.ca.issuingCertificate(), 'CERTIFICATE'));
      const out = join(t.dir, 'foreign.der');
      openssl(['ocsp', '-issuer', otherIssuer, '-serial', `0x${foreign.record.serial}`, '-reqout', out]);
      const { basic } = parseResponse(t.ca.ocsp.respond(readFileSync(out)));
      expect(basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber).toBe(2);
    } finally {
      await other.cleanup();
    }
  });

  it('omits the nonce extension when the request has none', () => {
    const { basic } = parseResponse(t.ca.ocsp.respond(requestFor(['7abc'], ['-no_nonce'])));
    expect(basic.tbsResponseData.responseExtensions ?? []).toHaveLength(0);
  });

  it('refuses garbage, truncation and trailing bytes with malformedRequest', () => {
    const request = requestFor(['7abc']);
    expect(derErrorOf(() => parseOcspRequest(request.subarray(0, request.length - 3)))).toBe('DER_TRUNCATED');
    expect(derErrorOf(() => parseOcspRequest(Buffer.concat([request, Buffer.from([0])])))).toBe('DER_TRAILING_BYTES');
    expect(derErrorOf(() => parseOcspRequest(Buffer.from([0x31, 0x00])))).toBe('DER_TAG_UNEXPECTED');
    for (const bad of [Buffer.alloc(0), Buffer.from('hello'), request.subarray(0, 10)]) {
      expect(t.ca.ocsp.respond(bad).toString('hex')).toBe('30030a0101');
    }
  });
});

/** The code of the DerError `parse` throws. */
function derErrorOf(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    if (err instanceof DerError) return err.code;
    throw err;
  }
  throw new Error('no DerError was thrown');
}
