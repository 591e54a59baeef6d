import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaKeys } from '../../ca/src/hierarchy.ts';
import { toWebCryptoKey } from '../../ca/src/keys.ts';
import { createTestCa, opensslCsr, P256, PASSPHRASE, type TestCa } from '../../ca/test/fixtures.ts';
import { PacktrustError } from '../../common/src/errors.ts';
import { bytes, x509 } from '../../common/src/pki.ts';
import { ORGANIZATION_IDENTIFIER_OID, POLICY_OIDS } from '../../common/src/vocabulary.ts';
import { ClientIdentifier } from '../src/client-identity.ts';
import { CaTrust } from '../src/trust.ts';

let t: TestCa;
let identifier: ClientIdentifier;
beforeAll(async () => {
  t = await createTestCa();
  const trust = new CaTrust(t.ca.chainPem());
  await trust.applyCrl(t.ca.currentCrl());
  identifier = new ClientIdentifier(trust);
});
afterAll(() => t.cleanup());

/** A request as fastify hands it over, with `der` as the client's TLS certificate. */
const requestWith = (der: Buffer) =>
  ({ raw: { socket: { getPeerCertificate: () => ({ raw: der }) } } }) as unknown as FastifyRequest;

function refusal(der: Buffer, allowed = ['manufacturer', 'operator'] as const): unknown {
  try {
    identifier.identify(requestWith(der), allowed);
  } catch (err) {
    if (err instanceof PacktrustError) return { status: err.status, code: err.code, detail: err.message };
    throw err;
  }
  throw new Error('the certificate was accepted');
}

/**
 * A certificate signed by the test CA's issuing key with the subject's OU and the policies given,
 * for what the CA itself never issues.
 */
async function crafted(ou: string, policies: string[], serial = '4a0000000000000000000000000000c1'): Promise<Buffer> {
  const meta = t.ca.meta();
  const issuing = new x509.X509Certificate(bytes(meta.issuingCert));
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: new x509.Name([{ CN: ['Crafted'] }, { [ORGANIZATION_IDENTIFIER_OID]: ['ACME'] }, { OU: [ou] }]),
    issuer: issuing.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: (keys as CryptoKeyPair).publicKey,
    signingKey: await toWebCryptoKey(readCaKeys(t.ca.dataDir, PASSPHRASE).issuing, meta.keyAlgorithm),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: policies.length > 0 ? [new x509.CertificatePolicyExtension(policies)] : [],
  });
  return Buffer.from(cert.rawData);
}

const UNTRUSTED = {
  status: 401,
  code: 'HUB_CLIENT_CERT_UNTRUSTED',
  detail: 'The client certificate has no packtrust profile or organisation',
};

describe('ClientIdentifier.identify', () => {
  it('takes the profile from the policy the CA wrote, and the serial in its normalised form', async () => {
    const { csr } = opensslCsr(t.dir, 'maker', P256);
    const issued = await t.ca.issue({ csr, profile: 'manufacturer', org: 'ACME', name: 'Acme' }, 'test');
    const identity = identifier.identify(requestWith(issued.record.der), ['manufacturer']);
    expect({ profile: identity.profile, org: identity.org, name: identity.name, serial: identity.serial }).toEqual({
      profile: 'manufacturer',
      org: 'ACME',
      name: 'Acme',
      serial: issued.record.serial,
    });
  });

  it('accepts a crafted certificate whose OU and policy agree, whatever the serial’s leading zeros', async () => {
    const der = await crafted('operator', [POLICY_OIDS.operator], '00c0ffee');
    const identity = identifier.identify(requestWith(der), ['operator']);
    expect([identity.profile, identity.serial]).toEqual(['operator', 'c0ffee']);
  });

  it('refuses a certificate whose OU names another profile than its policy', async () => {
    expect(refusal(await crafted('manufacturer', [POLICY_OIDS.operator]))).toEqual(UNTRUSTED);
    expect(refusal(await crafted('operator', [POLICY_OIDS.manufacturer]))).toEqual(UNTRUSTED);
  });

  it('refuses a certificate without a packtrust policy, or with two', async () => {
    expect(refusal(await crafted('manufacturer', []))).toEqual(UNTRUSTED);
    expect(refusal(await crafted('manufacturer', ['2.5.29.32.0']))).toEqual(UNTRUSTED);
    expect(refusal(await crafted('manufacturer', [POLICY_OIDS.manufacturer, POLICY_OIDS.operator]))).toEqual(UNTRUSTED);
  });

  it("refuses the CA's own listener certificate, whose profile calls nothing", () => {
    expect(refusal(t.ca.meta().serverCert)).toEqual(UNTRUSTED);
  });
});
