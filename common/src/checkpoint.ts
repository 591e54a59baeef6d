/**
 * Signed checkpoints of the evidence log: its tree head (origin, size, root, time) as a C2SP
 * checkpoint (c2sp.org/tlog-checkpoint) in a C2SP signed note (c2sp.org/signed-note) with an
 * Ed25519 signature, readable by golang.org/x/mod/sumdb/note, transparency-dev/formats and
 * scripts/verify-receipt.py:
 *
 * ```text
 * packtrust.example/evidence
 * 4027504
 * <base64 of the 32-byte root>
 * time 2026-07-24T09:30:00.000Z
 *
 * — packtrust.example/evidence <base64(key ID ‖ Ed25519 signature)>
 * ```
 *
 * tlog-checkpoint, "Note text": the first line is the origin, "a unique identifier for the log
 * identity which issued the checkpoint" (non-empty); the second the tree size, "the ASCII decimal
 * representation of the number of leaves in the tree, with no leading zeroes"; the third the root
 * hash, "the base64 encoding of the root of the RFC 6962 Merkle hash tree at the specified tree
 * size" (merkle.ts); "Any following lines are extension lines, opaque and OPTIONAL. Extension
 * lines, if any, MUST be non-empty. The use of extension lines is NOT RECOMMENDED, as they are not
 * auditable by log monitors."
 *
 * The time: one extension line, `time <RFC 3339>`, in the form `Date.prototype.toISOString`
 * writes (UTC, milliseconds), the only extension line written or read. Why:
 * - It is inside the note text, so the log's signature covers it, and Go's tools keep it (as the
 *   checkpoint's "rest" or "otherdata") instead of refusing the checkpoint.
 * - The spec's reservation is accepted, not worked around: no monitor can audit a clock, so the
 *   time is the hub's own statement and nothing more. Witnesses make no statement about extension
 *   lines (tlog-cosignature; its ML-DSA-44 form does not even sign them), and nothing in the tree
 *   depends on the time: consistency between checkpoints rests on the first three lines.
 * - The alternatives cost more: the timestamped Ed25519 signature of tlog-cosignature (type 0x04)
 *   is a witness's statement, and golang.org/x/mod/sumdb/note does not verify it; a time in the
 *   origin would make each checkpoint another log.
 * - RFC 3339 as toISOString writes it is how canonical-json.ts writes a Date, a person checking a
 *   receipt reads it, and it reads back to the same Date. Only that exact form
 *   is read, so each checkpoint has one text. `time` is the word tlog-cosignature uses for its
 *   own timestamp line.
 * - Any other extension line is refused: the hub writes none, and a line no reader understands
 *   should not travel under a signature that seems to vouch for it.
 *
 * The signature is the signed note's Ed25519 type (0x01): a line `— <key name> <base64(key ID ‖
 * signature)>`, where the key ID is SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]
 * and the signature is over the note text (the checkpoint, up to its last newline). A verifier
 * key (vkey) names the key as `<key name>+<hex key ID>+<base64(0x01 ‖ 32-byte public key)>`,
 * the string golang.org/x/mod/sumdb/note's NewVerifier reads.
 *
 * Where it stops: which verifier key and which origin a reader trusts (the key name SHOULD be the
 * origin, tlog-checkpoint says; {@link openCheckpoint} checks the signature, not that), and
 * whether a checkpoint is consistent with the ones seen before (merkle.ts verifyConsistency) are
 * the callers'. Arguments a caller got wrong (a malformed checkpoint to sign, a verifier key
 * that does not parse) throw a RangeError or TypeError; notes that fail to open throw a
 * {@link CheckpointError}.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { HASH_SIZE } from './merkle.ts';

export interface Checkpoint {
  /** The log's identity, the checkpoint's first line. */
  origin: string;
  /** Leaves in the tree. */
  size: number;
  /** MTH of the tree (RFC 9162 §2.1.1), 32 bytes. */
  root: Buffer;
  /** When the hub signed the checkpoint: the `time` extension line. */
  time: Date;
}

export interface CheckpointSigner {
  /** The key name of the signature line, the first part of the verifier key. */
  name: string;
  /** Ed25519 private key. */
  key: KeyObject;
}

/** Why a note did not open. */
export type CheckpointErrorCode =
  /** Not a signed note, or its text is not a checkpoint of the form above. */
  | 'CHECKPOINT_MALFORMED'
  /** A signature line names the verifier key (name and key ID), but its signature does not verify. */
  | 'CHECKPOINT_SIGNATURE_INVALID'
  /** No signature line names the verifier key: the note is signed by other keys only. */
  | 'CHECKPOINT_UNKNOWN_KEY';

/** Thrown by {@link openNote} and {@link openCheckpoint} for a note that does not open. */
export class CheckpointError extends Error {
  constructor(
    readonly code: CheckpointErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** signed-note: "Signatures are the base64 encoding of 4+n bytes", 4 of key ID. */
const KEY_ID_SIZE = 4;
/** signed-note, "Signature types": "0x01 — Ed25519 signatures as specified by this document." */
const ED25519_TYPE = 0x01;
const ED25519_KEY_SIZE = 32;
/** SubjectPublicKeyInfo DER of an Ed25519 key (RFC 8410), before its 32 bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** signed-note: "em dash (U+2014), space (U+0020), key name, space, base64-encoded signature". */
const SIGNATURE_PREFIX = '\u2014 ';
/** Go's note.Open reads at most 100 signatures; signed-note asks that at least 16 be read. */
const MAX_SIGNATURES = 100;
/** Bounds the work on a note: a checkpoint with 100 post-quantum signatures stays well below. */
const MAX_NOTE_LENGTH = 1 << 20;
const TIME_PREFIX = 'time ';
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// ── Checkpoints ────────────────────────────────────────────────────────────────────────────────

/** The note text (body) of a checkpoint: origin, size, base64 root and time, one per line. */
export function formatCheckpoint(cp: Checkpoint): string {
  if (cp.origin === '' || !isNoteText(cp.origin) || cp.origin.includes('\n')) {
    throw new RangeError('the origin must be one non-empty line of text without control characters');
  }
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) {
    throw new RangeError(`the size must be an integer from 0 to 2^53 - 1, got ${cp.size}`);
  }
  if (!(cp.root instanceof Uint8Array) || cp.root.length !== HASH_SIZE) {
    throw new RangeError(`the root must be a ${HASH_SIZE}-byte hash`);
  }
  const time = cp.time instanceof Date && !Number.isNaN(cp.time.getTime()) ? cp.time.toISOString() : '';
  if (!ISO_TIME.test(time)) throw new RangeError('the time must be a valid Date in the years 0000 to 9999');
  return `${cp.origin}\n${cp.size}\n${Buffer.from(cp.root).toString('base64')}\n${TIME_PREFIX}${time}\n`;
}

/** The full signed note of a checkpoint. */
export function signCheckpoint(cp: Checkpoint, signer: CheckpointSigner): string {
  return signNote(formatCheckpoint(cp), signer);
}

/**
 * Parses and verifies a signed note against one verifier key string; throws a CheckpointError
 * with a stable `code` ('CHECKPOINT_MALFORMED' | 'CHECKPOINT_SIGNATURE_INVALID' |
 * 'CHECKPOINT_UNKNOWN_KEY') otherwise. The signature is verified before the text is read.
 */
export function openCheckpoint(note: string, vkey: string): Checkpoint {
  const lines = openNote(note, vkey).split('\n');
  lines.pop(); // The note text ends with a newline.
  const malformed = (why: string) => new CheckpointError('CHECKPOINT_MALFORMED', `Not a checkpoint: ${why}`);
  if (lines.length !== 4) throw malformed(`it has ${lines.length} lines, not 4 (origin, size, root, time)`);
  const [origin, size, root, time] = lines as [string, string, string, string];
  if (origin === '') throw malformed('the origin line is empty');
  if (!DECIMAL.test(size) || !Number.isSafeInteger(Number(size))) {
    throw malformed('the size is not a decimal integer from 0 to 2^53 - 1 without leading zeroes');
  }
  const rootHash = decodeBase64(root);
  if (rootHash?.length !== HASH_SIZE) throw malformed(`the root is not the base64 of ${HASH_SIZE} bytes`);
  const iso = time.startsWith(TIME_PREFIX) ? time.slice(TIME_PREFIX.length) : '';
  const date = new Date(iso);
  if (!ISO_TIME.test(iso) || Number.isNaN(date.getTime()) || date.toISOString() !== iso) {
    throw malformed('the fourth line is not "time" and a UTC time as 2026-07-24T09:30:00.000Z');
  }
  return { origin, size: Number(size), root: rootHash, time: date };
}

// ── Signed notes ───────────────────────────────────────────────────────────────────────────────

/**
 * The verifier key string of an Ed25519 key, `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`
 * (signed-note, "Verifier keys"). A private key gives the verifier key of its public half.
 */
export function verifierKey(name: string, publicKey: KeyObject): string {
  checkKeyName(name);
  const raw = rawPublicKey(publicKey);
  const typed = Buffer.concat([Buffer.from([ED25519_TYPE]), raw]);
  return `${name}+${keyId(name, typed).toString('hex')}+${typed.toString('base64')}`;
}

/**
 * Signs a note text with one Ed25519 key: the text, a blank line, and the signature line. The text
 * must be valid for a note: ending in a newline, without control characters other than newline.
 */
export function signNote(text: string, signer: CheckpointSigner): string {
  checkKeyName(signer.name);
  if (!text.endsWith('\n') || !isNoteText(text)) {
    throw new RangeError('a note text ends with a newline and has no control characters other than newline');
  }
  if (signer.key.type !== 'private' || signer.key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('a checkpoint is signed with an Ed25519 private key');
  }
  const typed = Buffer.concat([Buffer.from([ED25519_TYPE]), rawPublicKey(signer.key)]);
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.key);
  const line = Buffer.concat([keyId(signer.name, typed), signature]).toString('base64');
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${line}\n`;
}

/**
 * Opens a signed note with one verifier key, as signed-note says and golang.org/x/mod/sumdb/note's
 * Open does: the text is what precedes the last blank line; signature lines of other keys (another
 * name or key ID) are ignored; every line of this key must verify, and at least one must be there.
 * Returns the note text, the final newline included.
 */
export function openNote(note: string, vkey: string): string {
  const key = parseVerifierKey(vkey);
  const malformed = (why: string) => new CheckpointError('CHECKPOINT_MALFORMED', `Not a signed note: ${why}`);
  if (note.length > MAX_NOTE_LENGTH) throw malformed(`it is longer than ${MAX_NOTE_LENGTH} characters`);
  if (!isNoteText(note)) throw malformed('it has control characters other than newline, or is not Unicode text');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line separates the text from the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block === '') throw malformed('no signature lines follow the last blank line');
  if (!block.endsWith('\n')) throw malformed('the last signature line does not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw malformed(`it has more than ${MAX_SIGNATURES} signatures`);
  let verified = 0;
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_PREFIX)) {
      throw malformed('a signature line must start with an em dash (U+2014) and a space');
    }
    const [name = '', encoded = '', ...extra] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    const signature = decodeBase64(encoded);
    if (!isKeyName(name) || extra.length > 0 || !signature || signature.length <= KEY_ID_SIZE) {
      throw malformed('a signature line must be "— <key name> <base64(key ID ‖ signature)>"');
    }
    // signed-note: "Verifiers MUST ignore signatures from unknown keys, even if they share a name
    // or ID (but not both) with a known key."
    if (name !== key.name || !signature.subarray(0, KEY_ID_SIZE).equals(key.id)) continue;
    // "If a signature from a known key fails to verify, clients SHOULD reject the whole note."
    if (!verify(null, Buffer.from(text, 'utf8'), key.publicKey, signature.subarray(KEY_ID_SIZE))) {
      throw new CheckpointError(
        'CHECKPOINT_SIGNATURE_INVALID',
        `The signature of ${key.name} (${key.id.toString('hex')}) does not verify`,
      );
    }
    verified++;
  }
  if (verified === 0) {
    throw new CheckpointError(
      'CHECKPOINT_UNKNOWN_KEY',
      `The note has no signature of ${key.name} (${key.id.toString('hex')}), only of other keys`,
    );
  }
  return text;
}

// ── Helpers ────────────────────────────────────────────────────────────────────────────────────

interface ParsedVerifierKey {
  name: string;
  id: Buffer;
  publicKey: KeyObject;
}

/** Parsed verifier keys, by their string: a node verifies every receipt with the same one. */
const parsedKeys = new Map<string, ParsedVerifierKey>();
const MAX_PARSED_KEYS = 64;

/** Parses `<name>+<hex key ID>+<base64(0x01 ‖ public key)>` as Go's note.NewVerifier does. */
function parseVerifierKey(vkey: string): ParsedVerifierKey {
  const cached = parsedKeys.get(vkey);
  if (cached) return cached;
  const invalid = (why: string) => new TypeError(`Not an Ed25519 verifier key <name>+<key ID>+<key>: ${why}`);
  // The name has no "+" and the key ID is hex, so the first two "+" end them; base64 has "+" too.
  const first = vkey.indexOf('+');
  const second = vkey.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw invalid('it has fewer than three parts');
  const name = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  const typed = decodeBase64(vkey.slice(second + 1));
  if (!isKeyName(name)) throw invalid('the name is empty or has spaces, "+" or control characters');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw invalid('the key ID is not 8 hex digits');
  if (!typed || typed.length === 0) throw invalid('the key is not base64');
  if (typed[0] !== ED25519_TYPE) throw invalid(`its signature type is ${typed[0]}, not 1 (Ed25519)`);
  if (typed.length !== 1 + ED25519_KEY_SIZE) throw invalid(`an Ed25519 key has ${ED25519_KEY_SIZE} bytes`);
  const id = Buffer.from(idHex, 'hex');
  if (!id.equals(keyId(name, typed))) throw invalid('the key ID is not that of the name and key');
  const publicKey = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, typed.subarray(1)]),
    format: 'der',
    type: 'spki',
  });
  const parsed = { name, id, publicKey };
  if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.clear();
  parsedKeys.set(vkey, parsed);
  return parsed;
}

/** signed-note: key ID = SHA-256(key name ‖ 0x0A ‖ signature type ‖ public key)[:4]. */
function keyId(name: string, typedKey: Uint8Array): Buffer {
  return createHash('sha256').update(`${name}\n`).update(typedKey).digest().subarray(0, KEY_ID_SIZE);
}

/** The 32 bytes of an Ed25519 public key (RFC 8032), from the public or the private KeyObject. */
function rawPublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('checkpoint keys are Ed25519 keys');
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

function checkKeyName(name: string): void {
  if (!isKeyName(name)) {
    throw new TypeError(`key name ${JSON.stringify(name)}: non-empty, without spaces, "+" or control characters`);
  }
}

/** signed-note: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus (U+002B)". */
function isKeyName(name: string): boolean {
  return name !== '' && isNoteText(name) && !/[\s\u0085+]/u.test(name);
}

/**
 * signed-note: "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control
 * characters (those below U+0020) other than newline." A string is valid UTF-8 once encoded unless
 * it holds a lone surrogate.
 */
function isNoteText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return false;
  }
  return !/\p{Cs}/u.test(text);
}

/** Standard base64 with its padding (RFC 4648 §4), in its one canonical form; else undefined. */
function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** The header of the hub's feed answers that carries its newest checkpoint (base64url of the signed note). */
export const EVIDENCE_CHECKPOINT_HEADER = 'packtrust-evidence-checkpoint';
