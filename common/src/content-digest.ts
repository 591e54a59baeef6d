import { createHash } from 'node:crypto';
import { type Dictionary, parseDictionary, serializeDictionary } from 'structured-headers';

/** RFC 9530 algorithms we accept, strongest first. */
const ALGORITHMS = { 'sha-512': 'sha512', 'sha-256': 'sha256' } as const;
export type DigestAlgorithm = keyof typeof ALGORITHMS;

/** `Content-Digest` field value for `body` (RFC 9530 §2), e.g. `sha-512=:…:`. */
export function contentDigest(body: Uint8Array, algorithm: DigestAlgorithm = 'sha-512'): string {
  const digest = createHash(ALGORITHMS[algorithm]).update(body).digest();
  return serializeDictionary(new Map([[algorithm, [bytesOf(digest), new Map()]]]) as Dictionary);
}

export type DigestCheck = { ok: true; algorithm: DigestAlgorithm } | { ok: false; reason: string };

/**
 * Checks a `Content-Digest` field value against the body's digest. The strongest algorithm we
 * know decides; a field with only unknown algorithms, or that does not parse, fails.
 */
export function checkContentDigest(
  fieldValue: string | undefined,
  actual: (algorithm: DigestAlgorithm) => Buffer,
): DigestCheck {
  if (!fieldValue) return { ok: false, reason: 'Content-Digest is missing' };
  let dict: Dictionary;
  try {
    dict = parseDictionary(fieldValue);
  } catch {
    return { ok: false, reason: 'Content-Digest is not a valid structured field dictionary' };
  }
  for (const algorithm of Object.keys(ALGORITHMS) as DigestAlgorithm[]) {
    const member = dict.get(algorithm);
    if (!member) continue;
    const value = member[0];
    if (!(value instanceof ArrayBuffer)) return { ok: false, reason: `${algorithm} must be a byte sequence` };
    return Buffer.from(value).equals(actual(algorithm))
      ? { ok: true, algorithm }
      : { ok: false, reason: `${algorithm} digest does not match the body` };
  }
  return { ok: false, reason: `Content-Digest names no supported algorithm (${Object.keys(ALGORITHMS).join(', ')})` };
}

/** The raw digest of a whole body, for {@link checkContentDigest}. */
export function bodyDigest(body: Uint8Array): (algorithm: DigestAlgorithm) => Buffer {
  return (algorithm) => createHash(ALGORITHMS[algorithm]).update(body).digest();
}

function bytesOf(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
