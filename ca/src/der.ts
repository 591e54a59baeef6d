import { DerError } from './errors.ts';

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
const booleanTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);

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

/** A DER element found by {@link readTlv}: `tag`, and where its header and content lie in the buffer. */
export interface Tlv {
  tag: number;
  headerStart: number;
  start: number;
  end: number;
}

/** Reads one element at `at`, checking that it fits before `limit`. Only single-byte tags (all we parse). */
function readTlv(buf: Uint8Array, at: number, limit = buf.length): Tlv {
  if (at + 2 > limit) throw new DerError('DER_TRUNCATED', 'truncated element');
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('DER_TAG_UNSUPPORTED', 'multi-byte tags are not supported');
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new DerError('DER_LENGTH_INVALID', 'bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new DerError('DER_TRUNCATED', 'element overruns its container');
  return { tag, headerStart: at, start, end };
}

/** The elements inside a constructed element. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readTlv(buf, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** Reads the single top-level element of `buf`, refusing trailing bytes. */
export function readRoot(buf: Uint8Array, tag = 0x30): Tlv {
  const root = readTlv(buf, 0);
  if (root.tag !== tag)
    throw new DerError('DER_TAG_UNEXPECTED', `expected tag 0x${tag.toString(16)}, found 0x${root.tag.toString(16)}`);
  if (root.end !== buf.length) throw new DerError('DER_TRAILING_BYTES', 'trailing bytes after the element');
  return root;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError('DER_TAG_UNEXPECTED', `expected ${what}`);
  return t;
}

export const rawOf = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.headerStart, t.end - t.headerStart);
export const contentOf = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);

/** Dotted form of an OBJECT IDENTIFIER's content octets. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('DER_VALUE_INVALID', 'empty OID');
  const parts: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift()!;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}
