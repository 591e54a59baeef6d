/**
 * A minimal DER writer for the structures this CA builds on its hot paths (CRL entries, OCSP
 * responses), where generic ASN.1 object models cost too much per element.
 */

export function tlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let header: Buffer;
  if (len < 0x80) header = Buffer.from([tag, len]);
  else if (len < 0x100) header = Buffer.from([tag, 0x81, len]);
  else if (len < 0x10000) header = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  else if (len < 0x1000000) header = Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  else header = Buffer.from([tag, 0x84, len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.concat([header, content]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
export const octetString = (b: Buffer): Buffer => tlv(0x04, b);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
/** Context-specific tag `[n]`, constructed (EXPLICIT or constructed IMPLICIT). */
export const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 | n, content);

/** A non-negative INTEGER from its big-endian magnitude (a leading zero is added when needed). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function smallInteger(n: number): Buffer {
  const hex = n.toString(16);
  return unsignedInteger(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
}

export const enumerated = (n: number): Buffer => tlv(0x0a, Buffer.from([n]));
export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
export const booleanTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const stack: number[] = [part & 0x7f];
    let v = Math.floor(part / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(...stack);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function timeDigits(d: Date): string {
  return `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
}

export const generalizedTime = (d: Date): Buffer =>
  tlv(0x18, Buffer.from(`${d.getUTCFullYear()}${timeDigits(d)}`, 'latin1'));

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(d: Date): Buffer {
  const year = d.getUTCFullYear();
  if (year < 2050) return tlv(0x17, Buffer.from(`${pad(year % 100)}${timeDigits(d)}`, 'latin1'));
  return generalizedTime(d);
}

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING } */
export function extension(id: string, value: Buffer, critical = false): Buffer {
  return critical ? sequence(oid(id), booleanTrue(), octetString(value)) : sequence(oid(id), octetString(value));
}
