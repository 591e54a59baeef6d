import { webcrypto } from 'node:crypto';
import { toPem, x509 } from '../common/src/pki.ts';

/**
 * A new P-256 key and a PKCS#10 request for it, for tools that set up certificates without
 * openssl (the stack's bootstrap, the demo). The subject is a placeholder: the CA ignores it.
 */
export async function generateKeyAndCsr(): Promise<{ keyPem: string; csr: Buffer }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=packtrust',
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey);
  return { keyPem: toPem(new Uint8Array(pkcs8), 'PRIVATE KEY'), csr: Buffer.from(request.rawData) };
}
