import { isIP } from 'node:net';
import { x509 } from '../../common/src/pki.ts';
import { OnboardingInvalid, ProfileUnknown } from './errors.ts';

/**
 * packtrust's private OID arc (a UUID-derived arc under 2.25, RFC 4122 §4.2 / X.667), so the policy
 * OIDs need no registration. The other services recognise a certificate's profile by its policy OID.
 */
export const PACKTRUST_ARC = '2.25.335414503495161417676765553655316789984';
export const ORGANIZATION_IDENTIFIER_OID = '2.5.4.97';

export const PROFILE_NAMES = ['manufacturer', 'verifier-node', 'gateway', 'operator'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];
/** `ca-server` is internal: the TLS certificate of the CA's own admin listener, issued at init. */
export type AnyProfileName = ProfileName | 'ca-server';

export interface Profile {
  name: AnyProfileName;
  policyOid: string;
  validityDays: number;
  extendedKeyUsage: string[];
  market: 'required' | 'optional' | 'forbidden';
  sans: 'required' | 'optional' | 'forbidden';
}

const CLIENT_AUTH = x509.ExtendedKeyUsage.clientAuth;
const SERVER_AUTH = x509.ExtendedKeyUsage.serverAuth;

export const PROFILES: Record<AnyProfileName, Profile> = {
  manufacturer: {
    name: 'manufacturer',
    policyOid: `${PACKTRUST_ARC}.1.1`,
    validityDays: 365,
    extendedKeyUsage: [CLIENT_AUTH],
    market: 'forbidden',
    sans: 'forbidden',
  },
  'verifier-node': {
    name: 'verifier-node',
    policyOid: `${PACKTRUST_ARC}.1.2`,
    validityDays: 365,
    // A node is a client of the hub's feed and a server to the pharmacies of its market.
    extendedKeyUsage: [CLIENT_AUTH, SERVER_AUTH],
    market: 'required',
    sans: 'optional',
  },
  gateway: {
    name: 'gateway',
    policyOid: `${PACKTRUST_ARC}.1.3`,
    validityDays: 365,
    extendedKeyUsage: [SERVER_AUTH, CLIENT_AUTH],
    market: 'forbidden',
    sans: 'required',
  },
  operator: {
    name: 'operator',
    policyOid: `${PACKTRUST_ARC}.1.4`,
    validityDays: 180,
    extendedKeyUsage: [CLIENT_AUTH],
    market: 'forbidden',
    sans: 'forbidden',
  },
  'ca-server': {
    name: 'ca-server',
    policyOid: `${PACKTRUST_ARC}.1.5`,
    validityDays: 365,
    extendedKeyUsage: [SERVER_AUTH],
    market: 'forbidden',
    sans: 'required',
  },
};

export function profileByName(name: string): Profile {
  if (!(PROFILE_NAMES as readonly string[]).includes(name)) {
    throw new ProfileUnknown(`Unknown profile "${name}"; expected one of ${PROFILE_NAMES.join(', ')}`);
  }
  return PROFILES[name as ProfileName];
}

export function profileByPolicyOid(oid: string): Profile | undefined {
  return Object.values(PROFILES).find((p) => p.policyOid === oid);
}

/** What onboarding staff say about the certificate holder; the subject is built from this only. */
export interface OnboardingData {
  profile: AnyProfileName;
  org: string;
  name: string;
  market?: string | undefined;
  dns: string[];
  ip: string[];
}

const ORG_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const MARKET = /^[A-Z]{2}$/;
const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
// Printable characters only: no control characters sneak into a certificate subject.
const DISPLAY_NAME = /^[\p{L}\p{N} .,'&()/_+-]{1,64}$/u;

/** Checks the onboarding data against the profile's rules; lists every problem at once. */
export function validateOnboarding(
  profile: Profile,
  input: {
    org?: string | undefined;
    name?: string | undefined;
    market?: string | undefined;
    dns?: string[];
    ip?: string[];
  },
): OnboardingData {
  const problems: string[] = [];
  const org = input.org ?? '';
  const name = input.name ?? org;
  const dns = input.dns ?? [];
  const ip = input.ip ?? [];
  if (!ORG_ID.test(org)) problems.push(`organisation id "${org}" must be 1-64 letters, digits, ".", "_", ":" or "-"`);
  if (!DISPLAY_NAME.test(name)) problems.push(`name "${name}" must be 1-64 printable characters`);
  if (input.market !== undefined && !MARKET.test(input.market)) {
    problems.push(`market "${input.market}" must be an ISO 3166-1 alpha-2 code such as DE`);
  }
  if (profile.market === 'required' && input.market === undefined)
    problems.push(`profile ${profile.name} needs --market`);
  if (profile.market === 'forbidden' && input.market !== undefined) {
    problems.push(`profile ${profile.name} takes no market`);
  }
  for (const d of dns) if (!DNS_NAME.test(d)) problems.push(`"${d}" is not a DNS name`);
  for (const a of ip) if (isIP(a) === 0) problems.push(`"${a}" is not an IP address`);
  const sanCount = dns.length + ip.length;
  if (profile.sans === 'required' && sanCount === 0) problems.push(`profile ${profile.name} needs --dns or --ip`);
  if (profile.sans === 'forbidden' && sanCount > 0) problems.push(`profile ${profile.name} takes no DNS names or IPs`);
  if (problems.length > 0) throw new OnboardingInvalid(problems.join('; '), { problems });
  return { profile: profile.name, org, name, market: input.market, dns, ip };
}

/** The certificate subject, built from the onboarding record alone. */
export function subjectOf(data: OnboardingData): x509.Name {
  const rdns: x509.JsonName = [
    { CN: [data.name] },
    { [ORGANIZATION_IDENTIFIER_OID]: [data.org] },
    { OU: [data.profile] },
  ];
  if (data.market) rdns.push({ C: [data.market] });
  return new x509.Name(rdns);
}
