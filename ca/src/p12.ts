import { createPrivateKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki, pkcs12, md, hmac, random, util } = forge;
const OID = {
  localKeyId: '1.2.840.113549.1.9.21',
  friendlyName: '1.2.840.113549.1.9.20',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  data: '1.2.840.113549.1.7.1',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;
const MAC_ITERATIONS = 2048;
const KEY_ITERATIONS = 100_000;

/**
 * A PKCS#12 bundle of a private key, its certificate and the chain, for onboarding staff who
 * generate a key on a manufacturer's behalf and hand it over. node-forge's own `toPkcs12Asn1`
 * accepts RSA keys only, so the bags are assembled here from forge's ASN.1, PBES2 and PKCS#12 KDF
 * primitives, which work for any key: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) shrouds the key and
 * an HMAC-SHA256 MAC protects the whole, which OpenSSL 3 and current platforms import.
 */
export function buildPkcs12(options: {
  key: KeyObject;
  certificate: Buffer;
  chain: Buffer[];
  password: string;
  friendlyName: string;
}): Buffer {
  const pkcs8 = options.key.export({ type: 'pkcs8', format: 'der' });
  const keyInfo = asn1.fromDer(util.createBuffer(pkcs8.toString('binary')));
  const localKeyId = md.sha1.create().update(options.certificate.toString('binary')).digest().getBytes();
  const attributes = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
    attribute(OID.localKeyId, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, localKeyId)),
    attribute(OID.friendlyName, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, options.friendlyName)),
  ]);

  const shrouded = pki.encryptPrivateKeyInfo(keyInfo, options.password, {
    algorithm: 'aes256',
    prfAlgorithm: 'sha256',
    count: KEY_ITERATIONS,
    saltSize: 16,
  });
  const keyBag = seq([oidOf(OID.pkcs8ShroudedKeyBag), ctx0([shrouded]), attributes]);
  const certBags = [options.certificate, ...options.chain].map((der, i) =>
    seq([
      oidOf(OID.certBag),
      ctx0([seq([oidOf(OID.x509Certificate), ctx0([octets(der.toString('binary'))])])]),
      ...(i === 0 ? [attributes] : []),
    ]),
  );
  const authSafe = seq([dataContent(seq([keyBag])), dataContent(seq(certBags))]);
  const authSafeDer = asn1.toDer(authSafe).getBytes();

  const salt = random.getBytesSync(16);
  const macKey = pkcs12.generateKey(
    options.password,
    util.createBuffer(salt),
    3,
    MAC_ITERATIONS,
    32,
    md.sha256.create(),
  );
  const mac = hmac.create();
  mac.start(md.sha256.create(), macKey);
  mac.update(authSafeDer);
  const macData = seq([
    seq([
      seq([oidOf(OID.sha256), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]),
      octets(mac.digest().getBytes()),
    ]),
    octets(salt),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(MAC_ITERATIONS).getBytes()),
  ]);
  const pfx = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(3).getBytes()),
    seq([oidOf(OID.data), ctx0([octets(authSafeDer)])]),
    macData,
  ]);
  return Buffer.from(asn1.toDer(pfx).getBytes(), 'binary');
}

/** Reads an unencrypted or passphrase-protected PEM private key. */
export function readPrivateKey(pem: Buffer, passphrase?: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem', ...(passphrase ? { passphrase } : {}) });
}

type Asn1 = forge.asn1.Asn1;
const seq = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const ctx0 = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, items);
const octets = (bytes: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
const oidOf = (oid: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes());
const attribute = (oid: string, value: Asn1): Asn1 =>
  seq([oidOf(oid), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [value])]);
const dataContent = (content: Asn1): Asn1 => seq([oidOf(OID.data), ctx0([octets(asn1.toDer(content).getBytes())])]);
