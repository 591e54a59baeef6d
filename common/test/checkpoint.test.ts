import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  verify,
} from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  CheckpointError,
  formatCheckpoint,
  openCheckpoint,
  openNote,
  signCheckpoint,
  signNote,
  verifierKey,
} from '../src/checkpoint.ts';
import { EMPTY_ROOT } from '../src/merkle.ts';
import { C2SP_NOTE, GO_NOTE, SUMDB_CHECKPOINT } from './fixtures/signed-note-vectors.ts';

/** The private key of a Go private key string, `PRIVATE+KEY+<name>+<key ID>+base64(0x01 ‖ seed)`. */
function goPrivateKey(skey: string): KeyObject {
  const seed = Buffer.from(skey.split('+').slice(4).join('+'), 'base64').subarray(1);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** The public key of a verifier key string, read by hand. */
function vkeyPublicKey(vkey: string): KeyObject {
  const raw = Buffer.from(vkey.split('+').slice(2).join('+'), 'base64').subarray(1);
  return createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]),
    format: 'der',
    type: 'spki',
  });
}

/** The CheckpointError `fn` throws, as a plain object to compare whole. */
function failure(fn: () => unknown): { name: string; code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof CheckpointError) return { name: err.name, code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a CheckpointError, nothing was thrown');
}

const malformed = (message: string) => ({ name: 'CheckpointError', code: 'CHECKPOINT_MALFORMED', message });
const notANote = (why: string) => malformed(`Not a signed note: ${why}`);
const notACheckpoint = (why: string) => malformed(`Not a checkpoint: ${why}`);
const SIGNATURE_INVALID = {
  name: 'CheckpointError',
  code: 'CHECKPOINT_SIGNATURE_INVALID',
  message: 'The signature of PeterNeumann (c74f20a3) does not verify',
};
const UNKNOWN_KEY = {
  name: 'CheckpointError',
  code: 'CHECKPOINT_UNKNOWN_KEY',
  message: 'The note has no signature of PeterNeumann (c74f20a3), only of other keys',
};

const GO_KEY = goPrivateKey(GO_NOTE.skey);
const GO_SIGNER = { name: 'PeterNeumann', key: GO_KEY };
const [GO_TEXT, GO_SIGNATURE_LINE] = [GO_NOTE.text, GO_NOTE.note.slice(GO_NOTE.text.length + 1)];

const HUB = generateKeyPairSync('ed25519');
const HUB_SIGNER = { name: 'packtrust.example/evidence', key: HUB.privateKey };
const HUB_VKEY = verifierKey(HUB_SIGNER.name, HUB.publicKey);

const CHECKPOINT: Checkpoint = {
  origin: 'packtrust.example/evidence',
  size: 4027504,
  root: Buffer.from('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328', 'hex'),
  time: new Date('2026-07-24T09:30:00.123Z'),
};
const CHECKPOINT_TEXT =
  'packtrust.example/evidence\n4027504\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\ntime 2026-07-24T09:30:00.123Z\n';

describe('verifierKey', () => {
  it('gives Go’s published verifier key for its published private key, and for the public half', () => {
    expect(verifierKey('PeterNeumann', GO_KEY)).toBe(GO_NOTE.vkey);
    expect(verifierKey('PeterNeumann', createPublicKey(GO_KEY))).toBe(GO_NOTE.vkey);
  });

  it('gives back each published verifier key from its public key', () => {
    expect(verifierKey('example.com/foo', vkeyPublicKey(C2SP_NOTE.vkey))).toBe(C2SP_NOTE.vkey);
    expect(verifierKey('sum.golang.org', vkeyPublicKey(SUMDB_CHECKPOINT.vkey))).toBe(SUMDB_CHECKPOINT.vkey);
  });

  it('is <name>+<hex SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]>+<base64(0x01 ‖ key)>', () => {
    const raw = Buffer.from(HUB.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const typed = Buffer.concat([Buffer.from([0x01]), raw]);
    const id = createHash('sha256').update('packtrust.example/evidence\n').update(typed).digest().subarray(0, 4);
    expect(HUB_VKEY).toBe(`packtrust.example/evidence+${id.toString('hex')}+${typed.toString('base64')}`);
  });

  it('refuses names that are empty or hold spaces, "+" or control characters, and keys other than Ed25519', () => {
    for (const name of ['', 'a b', 'a+b', 'a\u00a0b', 'a\u2003b', 'a\nb', 'a\u0001b']) {
      expect(() => verifierKey(name, HUB.publicKey), JSON.stringify(name)).toThrow(TypeError);
    }
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => verifierKey('hub', p256)).toThrow('checkpoint keys are Ed25519 keys');
  });
});

describe('signNote', () => {
  it('reproduces Go’s published signed note from its private key', () => {
    expect(signNote(GO_TEXT, GO_SIGNER)).toBe(GO_NOTE.note);
  });

  it('refuses a text that does not end in a newline or has control characters or lone surrogates', () => {
    const message = 'a note text ends with a newline and has no control characters other than newline';
    for (const text of ['no newline', 'carriage\r\n', 'tab\there\n', 'lone \ud800 surrogate\n']) {
      expect(() => signNote(text, GO_SIGNER), JSON.stringify(text)).toThrow(message);
    }
  });

  it('refuses a public key, a key other than Ed25519, and an invalid key name', () => {
    const message = 'a checkpoint is signed with an Ed25519 private key';
    expect(() => signNote(GO_TEXT, { name: 'hub', key: HUB.publicKey })).toThrow(message);
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(() => signNote(GO_TEXT, { name: 'hub', key: p256 })).toThrow(message);
    expect(() => signNote(GO_TEXT, { name: 'the hub', key: HUB.privateKey })).toThrow(TypeError);
  });
});

describe('openNote', () => {
  it('opens each published note with its verifier key and returns its text', () => {
    expect(openNote(GO_NOTE.note, GO_NOTE.vkey)).toBe(GO_NOTE.text);
    expect(openNote(C2SP_NOTE.note, C2SP_NOTE.vkey)).toBe(C2SP_NOTE.text);
    expect(openNote(SUMDB_CHECKPOINT.note, SUMDB_CHECKPOINT.vkey)).toBe(SUMDB_CHECKPOINT.text);
  });

  it('refuses, as Go’s TestNewVerifier does, every part and every one-byte change of a verifier key', () => {
    const vkey = GO_NOTE.vkey;
    const bad: string[] = [...GO_NOTE.badKeys];
    for (let i = 0; i <= vkey.length; i++) {
      for (let j = i + 1; j <= vkey.length; j++) if (i !== 0 || j !== vkey.length) bad.push(vkey.slice(i, j));
    }
    for (let i = 0; i < vkey.length; i++) {
      bad.push(vkey.slice(0, i) + String.fromCharCode(vkey.charCodeAt(i) + 1) + vkey.slice(i + 1));
    }
    for (const key of bad) expect(() => openNote(GO_NOTE.note, key), key).toThrow(TypeError);
    expect(() => openNote(GO_NOTE.note, GO_NOTE.badKeys[1]!)).toThrow(
      'Not an Ed25519 verifier key <name>+<key ID>+<key>: its signature type is 101, not 1 (Ed25519)',
    );
  });

  it('answers CHECKPOINT_SIGNATURE_INVALID for a changed text or signature', () => {
    expect(failure(() => openNote(GO_NOTE.note.replace('problem,', 'problem!'), GO_NOTE.vkey))).toEqual(
      SIGNATURE_INVALID,
    );
    const sig = Buffer.from(GO_SIGNATURE_LINE.split(' ')[2]!, 'base64');
    sig[10]! ^= 0x01;
    const changed = `${GO_TEXT}\n— PeterNeumann ${sig.toString('base64')}\n`;
    expect(failure(() => openNote(changed, GO_NOTE.vkey))).toEqual(SIGNATURE_INVALID);
  });

  it('answers CHECKPOINT_UNKNOWN_KEY for another key, another key of the same name, and a changed key ID', () => {
    expect(failure(() => openNote(C2SP_NOTE.note, GO_NOTE.vkey))).toEqual(UNKNOWN_KEY);
    const impostor = signNote(GO_TEXT, { name: 'PeterNeumann', key: HUB.privateKey });
    expect(failure(() => openNote(impostor, GO_NOTE.vkey))).toEqual(UNKNOWN_KEY);
    const sig = Buffer.from(GO_SIGNATURE_LINE.split(' ')[2]!, 'base64');
    sig[0]! ^= 0x01;
    expect(failure(() => openNote(`${GO_TEXT}\n— PeterNeumann ${sig.toString('base64')}\n`, GO_NOTE.vkey))).toEqual(
      UNKNOWN_KEY,
    );
  });

  it('ignores the signatures of other keys, and verifies every signature of its own', () => {
    const otherName = signNote(GO_TEXT, { name: 'Other', key: HUB.privateKey }).slice(GO_TEXT.length + 1);
    const sameIdOtherName = GO_SIGNATURE_LINE.replace('PeterNeumann', 'PeterNeumann2');
    const cosigned = `${GO_TEXT}\n${otherName}${sameIdOtherName}${GO_SIGNATURE_LINE}${otherName}`;
    expect(openNote(cosigned, GO_NOTE.vkey)).toBe(GO_TEXT);
    const [, name, encoded] = GO_SIGNATURE_LINE.trimEnd().split(' ') as [string, string, string];
    const sig = Buffer.from(encoded, 'base64');
    sig[40]! ^= 0x01;
    const secondBad = `${GO_NOTE.note}— ${name} ${sig.toString('base64')}\n`;
    expect(failure(() => openNote(secondBad, GO_NOTE.vkey))).toEqual(SIGNATURE_INVALID);
  });

  it('answers CHECKPOINT_MALFORMED for notes that break the signed-note format', () => {
    const line = GO_SIGNATURE_LINE;
    const [, , encoded] = line.trimEnd().split(' ') as [string, string, string];
    const emDash = 'a signature line must start with an em dash (U+2014) and a space';
    const shape = 'a signature line must be "— <key name> <base64(key ID ‖ signature)>"';
    const cases: [string, string][] = [
      [`${GO_TEXT}\n${line.replace('— ', '- ')}`, emDash],
      [`${GO_TEXT}\n${line.replace('— ', '– ')}`, emDash],
      [`${GO_TEXT}\n${line.replace('— ', '—')}`, emDash],
      [`${GO_TEXT}${line}`, 'no blank line separates the text from the signatures'],
      [`${GO_TEXT}\n`, 'no signature lines follow the last blank line'],
      [`${GO_TEXT}\n${line}\n`, 'no signature lines follow the last blank line'],
      [GO_NOTE.note.trimEnd(), 'the last signature line does not end with a newline'],
      [GO_NOTE.note.replace('\n', '\r\n'), 'it has control characters other than newline, or is not Unicode text'],
      [GO_NOTE.note.replace('If', '\ud800'), 'it has control characters other than newline, or is not Unicode text'],
      [`${GO_TEXT}\n— PeterNeumann ${encoded.slice(1)}\n`, shape],
      [`${GO_TEXT}\n— PeterNeumann ${encoded} extra\n`, shape],
      [`${GO_TEXT}\n— PeterNeumann\n`, shape],
      [`${GO_TEXT}\n— Peter+Neumann ${encoded}\n`, shape],
      [`${GO_TEXT}\n— PeterNeumann x08gow==\n`, shape],
      [`${GO_TEXT}\n${line.repeat(101)}`, 'it has more than 100 signatures'],
      [`${'a'.repeat(1 << 20)}\n${GO_NOTE.note}`, 'it is longer than 1048576 characters'],
    ];
    for (const [note, why] of cases)
      expect(
        failure(() => openNote(note, GO_NOTE.vkey)),
        why,
      ).toEqual(notANote(why));
  });
});

describe('formatCheckpoint', () => {
  it('writes origin, size, base64 root and the time line', () => {
    expect(formatCheckpoint(CHECKPOINT)).toBe(CHECKPOINT_TEXT);
    const empty = { origin: 'log', size: 0, root: EMPTY_ROOT, time: new Date(0) };
    expect(formatCheckpoint(empty)).toBe(
      'log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 1970-01-01T00:00:00.000Z\n',
    );
  });

  it('refuses an origin, size, root or time it cannot write', () => {
    const origin = 'the origin must be one non-empty line of text without control characters';
    const cases: [Partial<Checkpoint>, string][] = [
      [{ origin: '' }, origin],
      [{ origin: 'two\nlines' }, origin],
      [{ origin: 'tab\there' }, origin],
      [{ size: -1 }, 'the size must be an integer from 0 to 2^53 - 1, got -1'],
      [{ size: 1.5 }, 'the size must be an integer from 0 to 2^53 - 1, got 1.5'],
      [{ size: 2 ** 53 }, 'the size must be an integer from 0 to 2^53 - 1, got 9007199254740992'],
      [{ root: Buffer.alloc(31) }, 'the root must be a 32-byte hash'],
      [{ time: new Date(Number.NaN) }, 'the time must be a valid Date in the years 0000 to 9999'],
      [{ time: new Date('+010000-01-01T00:00:00.000Z') }, 'the time must be a valid Date in the years 0000 to 9999'],
    ];
    for (const [change, message] of cases) {
      expect(() => formatCheckpoint({ ...CHECKPOINT, ...change }), message).toThrow(new RangeError(message));
    }
  });
});

describe('signCheckpoint', () => {
  it('signs the checkpoint text with one Ed25519 signature line of the signer’s key ID', () => {
    const note = signCheckpoint(CHECKPOINT, HUB_SIGNER);
    const [text, signatureLine] = note.split('\n\n') as [string, string];
    expect(`${text}\n`).toBe(CHECKPOINT_TEXT);
    expect(signatureLine).toMatch(/^— packtrust\.example\/evidence [A-Za-z0-9+/]{91}=\n$/);
    const sig = Buffer.from(signatureLine.trimEnd().split(' ')[2]!, 'base64');
    expect(sig.subarray(0, 4).toString('hex')).toBe(HUB_VKEY.split('+')[1]);
    expect(verify(null, Buffer.from(CHECKPOINT_TEXT), HUB.publicKey, sig.subarray(4))).toBe(true);
  });
});

describe('openCheckpoint', () => {
  it('reads back what signCheckpoint signed, the time to the millisecond', () => {
    expect(openCheckpoint(signCheckpoint(CHECKPOINT, HUB_SIGNER), HUB_VKEY)).toEqual(CHECKPOINT);
    const empty = { origin: 'log', size: 0, root: EMPTY_ROOT, time: new Date(0) };
    expect(openCheckpoint(signCheckpoint(empty, HUB_SIGNER), HUB_VKEY)).toEqual(empty);
  });

  it('opens the signature of sum.golang.org’s published checkpoint, and refuses it for lacking a time', () => {
    expect(failure(() => openCheckpoint(SUMDB_CHECKPOINT.note, SUMDB_CHECKPOINT.vkey))).toEqual(
      notACheckpoint('it has 3 lines, not 4 (origin, size, root, time)'),
    );
  });

  it('answers the codes of openNote for a changed text, another key, a changed key ID and a missing em dash', () => {
    const note = signCheckpoint(CHECKPOINT, HUB_SIGNER);
    const [name, id] = HUB_VKEY.split('+') as [string, string];
    expect(failure(() => openCheckpoint(note.replace('4027504', '4027505'), HUB_VKEY))).toEqual({
      name: 'CheckpointError',
      code: 'CHECKPOINT_SIGNATURE_INVALID',
      message: `The signature of ${name} (${id}) does not verify`,
    });
    const other = generateKeyPairSync('ed25519').publicKey;
    const otherVkey = verifierKey(name, other);
    expect(failure(() => openCheckpoint(note, otherVkey))).toEqual({
      name: 'CheckpointError',
      code: 'CHECKPOINT_UNKNOWN_KEY',
      message: `The note has no signature of ${name} (${otherVkey.split('+')[1]}), only of other keys`,
    });
    const [text, line] = note.split('\n\n') as [string, string];
    const sig = Buffer.from(line.trimEnd().split(' ')[2]!, 'base64');
    sig[3]! ^= 0x80;
    expect(failure(() => openCheckpoint(`${text}\n\n— ${name} ${sig.toString('base64')}\n`, HUB_VKEY))).toEqual({
      name: 'CheckpointError',
      code: 'CHECKPOINT_UNKNOWN_KEY',
      message: `The note has no signature of ${name} (${id}), only of other keys`,
    });
    expect(failure(() => openCheckpoint(note.replace('— ', '-- '), HUB_VKEY))).toEqual(
      notANote('a signature line must start with an em dash (U+2014) and a space'),
    );
  });

  it('answers CHECKPOINT_MALFORMED for signed texts that are not checkpoints of this form', () => {
    const root = CHECKPOINT.root.toString('base64');
    const time = 'time 2026-07-24T09:30:00.123Z';
    const size = 'the size is not a decimal integer from 0 to 2^53 - 1 without leading zeroes';
    const rootWhy = 'the root is not the base64 of 32 bytes';
    const timeWhy = 'the fourth line is not "time" and a UTC time as 2026-07-24T09:30:00.000Z';
    const cases: [string[], string][] = [
      [['log', '5', root], 'it has 3 lines, not 4 (origin, size, root, time)'],
      [['log', '5', root, time, 'extra line'], 'it has 5 lines, not 4 (origin, size, root, time)'],
      [['log', '5', root, time, ''], 'it has 5 lines, not 4 (origin, size, root, time)'],
      [['', '5', root, time], 'the origin line is empty'],
      [['log', '05', root, time], size],
      [['log', '-5', root, time], size],
      [['log', '5.0', root, time], size],
      [['log', '9007199254740992', root, time], size],
      [['log', '5', root.slice(0, -4), time], rootWhy],
      [['log', '5', root.replace('=', ''), time], rootWhy],
      [['log', '5', root.replace('g=', 'h='), time], rootWhy],
      [['log', '5', Buffer.alloc(33).toString('base64'), time], rootWhy],
      [['log', '5', root, 'time 2026-07-24T09:30:00Z'], timeWhy],
      [['log', '5', root, 'time 2026-07-24T11:30:00.123+02:00'], timeWhy],
      [['log', '5', root, 'time 2026-02-30T09:30:00.000Z'], timeWhy],
      [['log', '5', root, 'Time 2026-07-24T09:30:00.123Z'], timeWhy],
      [['log', '5', root, 'time  2026-07-24T09:30:00.123Z'], timeWhy],
      [['log', '5', root, 'timestamp 1784885400'], timeWhy],
    ];
    for (const [lines, why] of cases) {
      const note = signNote(`${lines.join('\n')}\n`, HUB_SIGNER);
      expect(
        failure(() => openCheckpoint(note, HUB_VKEY)),
        why,
      ).toEqual(notACheckpoint(why));
    }
  });
});
