import type { KeyObject } from 'node:crypto';

/**
 * The names the CA, the hub and the verifier nodes share about who is calling: certificate
 * profiles, their policy OIDs and the keys each may hold, the organisation id, and the one way to
 * write a certificate serial number. The CA writes these into certificates; the services read
 * them back.
 *
 * Roles and operations, the vocabulary of packs, live in `pack-rules.ts`, beside the state
 * machine that gives them their meaning. What each profile's certificate contains (validity, key
 * usages, which onboarding fields it takes) is the CA's policy, in `ca/src/profiles.ts`.
 */

/**
 * packtrust's private OID arc: a UUID turned into an OID under `2.25` (ITU-T X.667, RFC 4122
 * §4.2), so it needs no registration. Profiles' certificate policies sit under `.1`.
 */
export const PACKTRUST_ARC = '2.25.335414503495161417676765553655316789984';

/** The subject attribute that carries the organisation id (X.520 organizationIdentifier). */
export const ORGANIZATION_IDENTIFIER_OID = '2.5.4.97';

/** The profiles onboarding staff issue: the callers of packtrust's services. */
export const PROFILE_NAMES = ['manufacturer', 'verifier-node', 'gateway', 'operator', 'verification-org'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];
/** `ca-server` is the TLS certificate of the CA's own admin listener, issued at init; it calls nothing. */
export type AnyProfileName = ProfileName | 'ca-server';

/**
 * Each profile's certificate policy (RFC 5280 §4.2.1.4), written into every certificate the CA
 * issues. A service recognises a certificate's profile by this OID; the subject's OU carries the
 * profile's name too, for people, and must agree.
 */
export const POLICY_OIDS: Readonly<Record<AnyProfileName, string>> = {
  manufacturer: `${PACKTRUST_ARC}.1.1`,
  'verifier-node': `${PACKTRUST_ARC}.1.2`,
  gateway: `${PACKTRUST_ARC}.1.3`,
  operator: `${PACKTRUST_ARC}.1.4`,
  'ca-server': `${PACKTRUST_ARC}.1.5`,
  'verification-org': `${PACKTRUST_ARC}.1.6`,
};

export function isProfileName(value: string): value is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(value);
}

/**
 * The kinds of key a packtrust certificate may hold: the NIST curves P-256 and P-384 (RFC 5480),
 * RSA (the CA takes 2048 to 8192 bits) and Ed25519 (RFC 8410).
 */
export const KEY_TYPES = ['P-256', 'P-384', 'RSA', 'Ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/**
 * The keys that sign packtrust's HTTP messages (RFC 9421): a manufacturer's and a verifier node's
 * writes, the gateway's receipts. Each has its one signature algorithm in
 * common/src/http-signatures/algorithms.ts, whose table must cover exactly these.
 */
export const SIGNING_KEY_TYPES = ['P-256', 'Ed25519', 'RSA'] as const satisfies readonly KeyType[];
export type SigningKeyType = (typeof SIGNING_KEY_TYPES)[number];

/**
 * The keys a certificate of each profile may hold: the CA issues no other (ca/src/profiles.ts),
 * and the gateway accepts no other (gateway/src/client-identity.ts). The profiles that sign HTTP
 * messages need a signing key; operators, verification organisations and the CA's admin listener
 * only authenticate over TLS.
 */
export const PROFILE_KEY_TYPES: Readonly<Record<AnyProfileName, readonly KeyType[]>> = {
  manufacturer: SIGNING_KEY_TYPES,
  'verifier-node': SIGNING_KEY_TYPES,
  gateway: SIGNING_KEY_TYPES,
  operator: KEY_TYPES,
  'ca-server': KEY_TYPES,
  'verification-org': KEY_TYPES,
};

/** The kind of a public or private key; undefined for any other (another curve, Ed448, DSA…). */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    }
    case 'rsa':
    case 'rsa-pss':
      return 'RSA';
    case 'ed25519':
      return 'Ed25519';
    default:
      return undefined;
  }
}

/**
 * Why a key may not be in a certificate of `profile`, or undefined when it may: one wording for
 * the CA's refusal and the gateway's.
 */
export function profileKeyProblem(profile: AnyProfileName, key: KeyObject): string | undefined {
  const type = keyTypeOf(key);
  const allowed = PROFILE_KEY_TYPES[profile];
  if (type && allowed.includes(type)) return undefined;
  const signs = allowed === SIGNING_KEY_TYPES ? ' (it signs HTTP messages)' : '';
  const list = `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}`;
  const article = /^[aeiou]/.test(profile) ? 'An' : 'A';
  return `${article} ${profile} certificate holds a ${list} key${signs}; this key is ${type ?? key.asymmetricKeyType ?? 'unknown'}`;
}

const ORGANISATION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/**
 * An organisation id, as the CA writes it into certificates and the hub keys ownership by it:
 * 1 to 64 letters, digits, `.`, `_`, `:` or `-`, starting with a letter or a digit.
 */
export function isOrganisationId(value: string): boolean {
  return ORGANISATION_ID.test(value);
}

/**
 * A certificate serial number in the one form packtrust compares and stores: lower-case hex of
 * the integer, without leading zeros. Undefined when `input` is no serial of at most 20 octets.
 *
 * RFC 5280 §4.1.2.2: a serial is a positive integer of at most 20 octets. Writers of hex
 * disagree about leading zeros: DER adds a `00` octet before a first octet of 0x80 or more
 * (@peculiar/x509 and the CRL's raw bytes keep it), node:crypto pads to whole octets (`0ABC`),
 * openssl prints colons (`4a:3b:…`), people type `0x…` or drop a leading zero. All of these
 * name one integer, so every zero before its first significant digit goes. Zero itself is no
 * serial. Hex carries no sign: where the DER INTEGER is at hand (the CA's OCSP reader), a
 * negative one is refused before it gets here.
 */
export function normaliseSerial(input: string): string | undefined {
  const hex = input.trim().toLowerCase().replace(/^0x/, '').replaceAll(':', '').replace(/^0+/, '');
  return /^[0-9a-f]{1,40}$/.test(hex) ? hex : undefined;
}
