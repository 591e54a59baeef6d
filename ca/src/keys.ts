import { createPrivateKey, generateKeyPairSync, type KeyObject, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PassphraseInvalid } from './errors.ts';

export const KEY_ALGORITHMS = ['P-256', 'P-384', 'RSA-3072'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** How a key of each algorithm signs certificates, CRLs and OCSP responses. */
export interface SigningSuite {
  /** For @peculiar/x509 (WebCrypto). */
  webcrypto: EcdsaParams | RsaHashedImportParams;
  importParams: EcKeyImportParams | RsaHashedImportParams;
  /** For node:crypto `sign()` on the hot paths. */
  hash: 'sha256' | 'sha384';
  /** AlgorithmIdentifier OID of the signature, and whether it carries NULL parameters. */
  signatureOid: string;
  nullParams: boolean;
}

export function signingSuite(alg: KeyAlgorithm): SigningSuite {
  switch (alg) {
    case 'P-256':
      return {
        webcrypto: { name: 'ECDSA', hash: 'SHA-256' },
        importParams: { name: 'ECDSA', namedCurve: 'P-256' },
        hash: 'sha256',
        signatureOid: '1.2.840.10045.4.3.2',
        nullParams: false,
      };
    case 'P-384':
      return {
        webcrypto: { name: 'ECDSA', hash: 'SHA-384' },
        importParams: { name: 'ECDSA', namedCurve: 'P-384' },
        hash: 'sha384',
        signatureOid: '1.2.840.10045.4.3.3',
        nullParams: false,
      };
    case 'RSA-3072':
      return {
        webcrypto: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        hash: 'sha256',
        signatureOid: '1.2.840.113549.1.1.11',
        nullParams: true,
      };
  }
}

export function generateKeyPair(alg: KeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  if (alg === 'RSA-3072') return generateKeyPairSync('rsa', { modulusLength: 3072 });
  return generateKeyPairSync('ec', { namedCurve: alg });
}

/** Encrypted PKCS#8 PEM (AES-256-CBC, PBKDF2) for keys at rest. */
export function encryptPrivateKey(key: KeyObject, passphrase: string): string {
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

export function decryptPrivateKey(pem: string | Buffer, passphrase: string, what: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch (err) {
    throw new PassphraseInvalid(
      `Cannot decrypt the ${what} key: wrong passphrase or damaged key file`,
      {},
      { cause: err },
    );
  }
}

export async function toWebCryptoKey(key: KeyObject, alg: KeyAlgorithm): Promise<CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return (await webcrypto.subtle.importKey('pkcs8', der, signingSuite(alg).importParams, false, [
    'sign',
  ])) as unknown as CryptoKey;
}

export const MIN_PASSPHRASE_LENGTH = 12;

/**
 * The passphrase that protects the CA keys: from a file (first line) when one is named, else from
 * the environment variable. Never from a command-line argument, which other users can read.
 */
export function readPassphrase(options: { file?: string | undefined; envVar: string }): string {
  let value: string | undefined;
  if (options.file) {
    try {
      value = readFileSync(options.file, 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new PassphraseInvalid(`Cannot read the passphrase file ${options.file}: ${(err as Error).message}`);
    }
  } else {
    value = process.env[options.envVar];
  }
  if (!value) {
    throw new PassphraseInvalid(
      `No CA passphrase: set ${options.envVar} or pass --passphrase-file (at least ${MIN_PASSPHRASE_LENGTH} characters)`,
    );
  }
  return value;
}
