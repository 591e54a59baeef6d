import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCsr } from '../src/csr.ts';
import { children, oid, rawOf, readRoot, sequence } from '../src/der.ts';
import { CsrMalformed, CsrSignatureInvalid, KeyRejected } from '../src/errors.ts';
import { openssl, opensslCsr, P256 } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'packtrust-csr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkCsr with CSRs made by openssl req', () => {
  it.each([
    ['P-256', P256, 'P-256'],
    ['P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'P-384'],
    ['RSA-2048', ['-newkey', 'rsa:2048'], 'RSA-2048'],
    ['RSA-3072', ['-newkey', 'rsa:3072'], 'RSA-3072'],
    ['Ed25519', ['-newkey', 'ed25519'], 'Ed25519'],
  ])('accepts a %s request and reports its key type', (name, args, keyType) => {
    const { csr } = opensslCsr(dir, name, args);
    expect(checkCsr(csr).keyType).toBe(keyType);
  });

  it('accepts the DER form as well as PEM', () => {
    const { csrPath } = opensslCsr(dir, 'der', P256);
    expect(openssl(['req', '-in', csrPath, '-outform', 'DER', '-out', `${csrPath}.der`]).status).toBe(0);
    expect(checkCsr(readFileSync(`${csrPath}.der`)).keyType).toBe('P-256');
  });

  it('refuses an RSA key below 2048 bits', () => {
    const { csr } = opensslCsr(dir, 'rsa1024', ['-newkey', 'rsa:1024']);
    expect(() => checkCsr(csr)).toThrow(KeyRejected);
    expect(() => checkCsr(csr)).toThrow(/1024 bits is too weak/);
  });

  it.each([
    ['secp256k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']],
    ['P-521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']],
    ['brainpoolP256r1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:brainpoolP256r1']],
  ])('refuses the curve %s', (_name, args) => {
    const { csr } = opensslCsr(dir, `curve-${_name}`, args);
    expect(() => checkCsr(csr)).toThrow(KeyRejected);
  });

  it('refuses Ed448, an algorithm the system does not support', () => {
    const { csr } = opensslCsr(dir, 'ed448', ['-newkey', 'ed448']);
    expect(() => checkCsr(csr)).toThrow(KeyRejected);
  });

  it('refuses a request signed with SHA-1', () => {
    const { csr } = opensslCsr(dir, 'sha1', ['-newkey', 'rsa:2048', '-sha1']);
    expect(() => checkCsr(csr)).toThrow(CsrSignatureInvalid);
  });

  it('refuses a CSR whose signature does not verify', () => {
    const { csrPath } = opensslCsr(dir, 'tamper', P256);
    expect(openssl(['req', '-in', csrPath, '-outform', 'DER', '-out', `${csrPath}.der`]).status).toBe(0);
    const der = readFileSync(`${csrPath}.der`);
    // Change one letter of the subject: the signature no longer covers what is there.
    const i = der.indexOf(Buffer.from('whatever'));
    der[i] = der[i]! ^ 0x01;
    expect(() => checkCsr(der)).toThrow(CsrSignatureInvalid);
  });

  it.each([
    ['an RSA key', ['-newkey', 'rsa:2048'], '1.2.840.10045.4.3.2'],
    ['a P-256 key', P256, '1.2.840.113549.1.1.11'],
  ])('refuses %s whose CSR declares another algorithm than its key makes', (name, args, otherOid) => {
    const { csrPath } = opensslCsr(dir, `mismatch-${name}`, args);
    expect(openssl(['req', '-in', csrPath, '-outform', 'DER', '-out', `${csrPath}.der`]).status).toBe(0);
    const der = withSignatureAlgorithm(readFileSync(`${csrPath}.der`), otherOid);
    expect(() => checkCsr(der)).toThrow(CsrSignatureInvalid);
    expect(() => checkCsr(der)).toThrow(/declares .* but its key is/);
  });

  it('refuses input that is not a CSR', () => {
    expect(() => checkCsr(Buffer.from('hello, I am not a CSR'))).toThrow(CsrMalformed);
    expect(() =>
      checkCsr(Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n')),
    ).toThrow(CsrMalformed);
  });
});

/**
 * The same CSR with its signatureAlgorithm (RFC 2986 §4.2) replaced by `oid` and no parameters:
 * the signature bytes stay those the key made.
 */
function withSignatureAlgorithm(der: Buffer, algorithm: string): Buffer {
  const [info, , signature] = children(der, readRoot(der));
  return sequence(rawOf(der, info!), sequence(oid(algorithm)), rawOf(der, signature!));
}
