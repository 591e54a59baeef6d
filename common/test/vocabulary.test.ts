import { generateKeyPairSync, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { algorithmForKey } from '../src/http-signatures/index.ts';
import { x509 } from '../src/pki.ts';
import {
  isOrganisationId,
  isProfileName,
  KEY_TYPES,
  keyTypeOf,
  normaliseSerial,
  PROFILE_KEY_TYPES,
  PROFILE_NAMES,
  profileKeyProblem,
  SIGNING_KEY_TYPES,
} from '../src/vocabulary.ts';

describe('normaliseSerial', () => {
  it('writes lower-case hex without leading zeros', () => {
    expect(normaliseSerial('4A3B01')).toBe('4a3b01');
    expect(normaliseSerial('4a3b01')).toBe('4a3b01');
  });

  it('gives one form for the DER sign octet, whole-octet padding and a dropped leading zero', () => {
    // DER writes 0xc0ffee as 00 c0 ff ee; @peculiar/x509 and CRL bytes keep the 00.
    expect(normaliseSerial('00c0ffee')).toBe('c0ffee');
    expect(normaliseSerial('C0FFEE')).toBe('c0ffee');
    // node:crypto pads to whole octets; a person drops the zero; a library may pad further.
    for (const form of ['0ABC', 'abc', '00000abc', '0x0abc', '00:0a:bc']) expect(normaliseSerial(form)).toBe('abc');
    expect(normaliseSerial('01')).toBe('1');
  });

  it('reads the forms people paste: 0x, openssl colons, surrounding white space', () => {
    expect(normaliseSerial('0x4A3B')).toBe('4a3b');
    expect(normaliseSerial('4a:3b:01')).toBe('4a3b01');
    expect(normaliseSerial('  4a3b01\n')).toBe('4a3b01');
  });

  it('takes serials of up to 20 octets, a sign octet before them included', () => {
    const twenty = `c${'1'.repeat(39)}`;
    expect(normaliseSerial(twenty)).toBe(twenty);
    expect(normaliseSerial(`00${twenty}`)).toBe(twenty);
    expect(normaliseSerial(`1${twenty}`)).toBeUndefined();
  });

  it('refuses what is no positive integer: zero, nothing, signs, other characters', () => {
    for (const bad of ['0', '00', '0x', '', '   ', ':', '-01', '+01', '4a 3b', 'xyz', '4a3g', '0x-1']) {
      expect(normaliseSerial(bad), bad).toBeUndefined();
    }
  });

  it('gives node:crypto and @peculiar/x509 the same serial for one certificate, sign octet or not', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    for (const serial of ['00c0ffee0102', '0abc', '7f']) {
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serial,
        name: 'CN=serial test',
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      });
      const fromNode = new NodeX509Certificate(Buffer.from(cert.rawData)).serialNumber;
      expect(normaliseSerial(fromNode), serial).toBe(normaliseSerial(cert.serialNumber));
      expect(normaliseSerial(fromNode), serial).toBe(normaliseSerial(serial));
    }
  });
});

describe('isProfileName', () => {
  it('accepts the profiles onboarding issues and nothing else', () => {
    for (const name of PROFILE_NAMES) expect(isProfileName(name)).toBe(true);
    for (const name of ['ca-server', 'Manufacturer', 'pharmacy', '']) expect(isProfileName(name), name).toBe(false);
  });
});

describe('isOrganisationId', () => {
  it('accepts 1 to 64 letters, digits, ".", "_", ":" and "-", starting with a letter or digit', () => {
    for (const id of ['A', '7', 'ACME-1', 'NMVO-DE', 'org.example:de_1', 'a'.repeat(64)]) {
      expect(isOrganisationId(id), id).toBe(true);
    }
  });

  it('refuses an empty or over-long id, a leading punctuation mark, spaces and other characters', () => {
    for (const id of ['', 'a'.repeat(65), '-ACME', '.acme', 'ACME 1', 'ACME/1', 'ACMÉ', 'acme\n']) {
      expect(isOrganisationId(id), JSON.stringify(id)).toBe(false);
    }
  });
});

const KEYS = {
  'P-256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
  'P-384': () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
  RSA: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
  Ed25519: () => generateKeyPairSync('ed25519').publicKey,
} as const;

describe('keyTypeOf', () => {
  it('names the four key types and nothing else', () => {
    for (const type of KEY_TYPES) expect(keyTypeOf(KEYS[type]())).toBe(type);
    expect(keyTypeOf(generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey)).toBeUndefined();
    expect(keyTypeOf(generateKeyPairSync('ed448').publicKey)).toBeUndefined();
  });
});

describe('PROFILE_KEY_TYPES', () => {
  it('gives every profile that signs HTTP messages only keys with a signature algorithm the hub accepts', () => {
    for (const type of KEY_TYPES) {
      const hasAlgorithm = algorithmForKey(KEYS[type]()) !== undefined;
      expect(hasAlgorithm).toBe((SIGNING_KEY_TYPES as readonly string[]).includes(type));
    }
    for (const profile of ['manufacturer', 'verifier-node', 'gateway'] as const) {
      expect(PROFILE_KEY_TYPES[profile]).toEqual(SIGNING_KEY_TYPES);
    }
    expect(PROFILE_KEY_TYPES.operator).toEqual(KEY_TYPES);
  });
});

describe('profileKeyProblem', () => {
  it('says why a key may not be in a certificate of a profile', () => {
    expect(profileKeyProblem('manufacturer', KEYS['P-256']())).toBeUndefined();
    expect(profileKeyProblem('operator', KEYS['P-384']())).toBeUndefined();
    expect(profileKeyProblem('verifier-node', KEYS['P-384']())).toBe(
      'A verifier-node certificate holds a P-256, Ed25519 or RSA key (it signs HTTP messages); this key is P-384',
    );
    expect(profileKeyProblem('operator', generateKeyPairSync('ed448').publicKey)).toBe(
      'An operator certificate holds a P-256, P-384, RSA or Ed25519 key; this key is ed448',
    );
  });
});
