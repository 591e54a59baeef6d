/**
 * The names the CA, the hub and the verifier nodes share about who is calling: certificate
 * profiles and their policy OIDs, the organisation id, and the one way to write a certificate
 * serial number. The CA writes these into certificates; the services read them back.
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
export const PROFILE_NAMES = ['manufacturer', 'verifier-node', 'gateway', 'operator'] as const;
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
};

export function isProfileName(value: string): value is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(value);
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
