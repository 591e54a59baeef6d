import { isIP } from 'node:net';
import { x509 } from '../../common/src/pki.ts';
import {
  type AnyProfileName,
  isOrganisationId,
  isProfileName,
  ORGANIZATION_IDENTIFIER_OID,
  PROFILE_NAMES,
  profileKeyProblem,
} from '../../common/src/vocabulary.ts';
import type { CheckedCsr } from './csr.ts';
import { KeyRejected, OnboardingInvalid, ProfileUnknown } from './errors.ts';

/**
 * What the CA puts into the certificate of each profile: its validity, key usages and which
 * onboarding fields it takes are the CA's own policy. The profile names, their policy OIDs and
 * the keys each may hold are shared with the services, which recognise a certificate's profile by
 * its policy OID (common/src/vocabulary.ts).
 */
export interface Profile {
  name: AnyProfileName;
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
    validityDays: 365,
    extendedKeyUsage: [CLIENT_AUTH],
    market: 'forbidden',
    sans: 'forbidden',
  },
  'verifier-node': {
    name: 'verifier-node',
    validityDays: 365,
    // A node is a client of the hub's feed and a server to the pharmacies of its market.
    extendedKeyUsage: [CLIENT_AUTH, SERVER_AUTH],
    market: 'required',
    sans: 'optional',
  },
  gateway: {
    name: 'gateway',
    validityDays: 365,
    extendedKeyUsage: [SERVER_AUTH, CLIENT_AUTH],
    market: 'forbidden',
    sans: 'required',
  },
  operator: {
    name: 'operator',
    validityDays: 180,
    extendedKeyUsage: [CLIENT_AUTH],
    market: 'forbidden',
    sans: 'forbidden',
  },
  // A market's national verification organisation (docs/domain.md §5): reads the alerts of its
  // market with the identity of whoever raised them, for investigations.
  'verification-org': {
    name: 'verification-org',
    validityDays: 180,
    extendedKeyUsage: [CLIENT_AUTH],
    market: 'required',
    sans: 'forbidden',
  },
  'ca-server': {
    name: 'ca-server',
    validityDays: 365,
    extendedKeyUsage: [SERVER_AUTH],
    market: 'forbidden',
    sans: 'required',
  },
};

export function profileByName(name: string): Profile {
  if (!isProfileName(name)) {
    throw new ProfileUnknown(`Unknown profile "${name}"; expected one of ${PROFILE_NAMES.join(', ')}`);
  }
  return PROFILES[name];
}

/**
 * Refuses a key the profile may not hold (common/src/vocabulary.ts `PROFILE_KEY_TYPES`, which the
 * gateway checks too): a manufacturer's P-384 key signs no algorithm the hub accepts.
 */
export function checkProfileKey(profile: AnyProfileName, key: Pick<CheckedCsr, 'publicKey'>): void {
  const problem = profileKeyProblem(profile, key.publicKey);
  if (problem) throw new KeyRejected(problem);
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
  if (!isOrganisationId(org))
    problems.push(`organisation id "${org}" must be 1-64 letters, digits, ".", "_", ":" or "-"`);
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
