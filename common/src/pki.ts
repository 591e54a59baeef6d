import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as pkijs from 'pkijs';

// @peculiar/x509 and pkijs both need a WebCrypto engine; Node's is the one we use everywhere.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);
pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Crypto }));

export { pkijs, x509 };

/** PEM armour for DER data (`CERTIFICATE`, `X509 CRL`, `CERTIFICATE REQUEST`, …). */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/** Every PEM block with the given label in `text`, as DER. */
export function fromPem(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** Accepts PEM or DER bytes and returns DER. */
export function derOf(input: Buffer, label: string): Buffer {
  const text = input.subarray(0, 64).toString('latin1');
  if (text.includes('-----BEGIN')) {
    const blocks = fromPem(input.toString('latin1'), label);
    if (blocks.length === 0) throw new Error(`no ${label} PEM block found`);
    return blocks[0]!;
  }
  return input;
}

/** Node Buffers as the `Uint8Array<ArrayBuffer>` the WebCrypto-based libraries declare (no copy). */
export function bytes(buf: Uint8Array): Uint8Array<ArrayBuffer> {
  return buf as Uint8Array<ArrayBuffer>;
}
