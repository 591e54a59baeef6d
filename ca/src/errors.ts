import { defineError } from '../../common/src/errors.ts';

/**
 * The CA's error catalogue: every code it raises, one entry each with the moment it is thrown.
 * Codes are part of the API (the admin API's are listed in openapi/ca.yaml) and never renamed.
 * The shared ones (`BAD_REQUEST`, `NOT_FOUND`, `INTERNAL`…) are in common/src/errors.ts.
 */

// ── Requests: the CSR and its key (issue, renew) ───────────────────────────────────────────────

/** The CSR is not PEM or DER PKCS#10, or its structure is broken (csr.ts). */
export const CsrMalformed = defineError('CA_CSR_MALFORMED', 400, 'The certificate signing request cannot be parsed');
/**
 * The CSR's signature fails, uses a broken or unsupported algorithm, or declares an algorithm its
 * key does not make: no proof of possession (csr.ts).
 */
export const CsrSignatureInvalid = defineError(
  'CA_CSR_SIGNATURE_INVALID',
  400,
  'The CSR signature does not verify (no proof of possession)',
);
/**
 * The key is not P-256, P-384, RSA of 2048 to 8192 bits or Ed25519 (csr.ts), or not one its
 * profile may hold: P-384 for operators only (profiles.ts, common/src/vocabulary.ts).
 */
export const KeyRejected = defineError('CA_KEY_REJECTED', 400, 'The public key is weak or of an unsupported type');

// ── Onboarding data ────────────────────────────────────────────────────────────────────────────

/** The profile named is not one onboarding issues (profiles.ts). */
export const ProfileUnknown = defineError('CA_PROFILE_UNKNOWN', 400, 'Unknown certificate profile');
/**
 * The onboarding data breaks the profile's rules (all problems listed in `problems`), or a CLI
 * input file cannot be read, or a password is too short (profiles.ts, commands/).
 */
export const OnboardingInvalid = defineError('CA_ONBOARDING_INVALID', 400, 'The onboarding data is invalid');

// ── Certificates in the inventory: renew, revoke, show ─────────────────────────────────────────

/** No certificate of this CA has the serial given (inventory.ts). */
export const SerialUnknown = defineError('CA_SERIAL_UNKNOWN', 404, 'No certificate with this serial number');
/** Renewal of a revoked certificate or of the admin listener's own (issuance.ts). */
export const NotRenewable = defineError('CA_NOT_RENEWABLE', 409, 'The certificate cannot be renewed');
/** A second revocation of one certificate (revocation.ts). */
export const AlreadyRevoked = defineError('CA_ALREADY_REVOKED', 409, 'The certificate is already revoked');
/** A reason outside the RFC 5280 §5.3.1 reasons this CA accepts; `certificateHold` too, as revocation is final (crl.ts). */
export const ReasonInvalid = defineError('CA_REASON_INVALID', 400, 'Unknown or unsupported revocation reason');

// ── The admin API's gate (admin-access.ts) ─────────────────────────────────────────────────────

/** No client certificate, or one this CA did not issue, or an expired or revoked one. */
export const ClientCertificateRequired = defineError(
  'CA_CLIENT_CERT_REQUIRED',
  401,
  'A valid client certificate issued by this CA is required',
);
/** A certificate of this CA, valid, but not of the operator profile. */
export const OperatorRequired = defineError('CA_OPERATOR_REQUIRED', 403, 'Only operator certificates may use this API');

// ── The CA's own state: raised when the CA is created or opened, by the CLI and at start-up ────

/** `open` on a directory without a CA or whose init did not finish (authority.ts); its meta record gone (inventory.ts). */
export const NotInitialised = defineError('CA_NOT_INITIALISED', 500, 'The CA has not been initialised');
/** `init` on a directory that already holds a CA (hierarchy.ts). */
export const AlreadyInitialised = defineError('CA_ALREADY_INITIALISED', 409, 'The CA is already initialised');
/** The passphrase of the CA keys is missing, unreadable or does not decrypt them (keys.ts). */
export const PassphraseInvalid = defineError('CA_PASSPHRASE_INVALID', 500, 'The CA key passphrase is missing or wrong');
/** A CA certificate in the data directory lacks what signing needs, such as its key identifier (certificate.ts). */
export const CaCertificateInvalid = defineError(
  'CA_CERTIFICATE_INVALID',
  500,
  "The CA's own certificate cannot be used",
);

// ── Internal: caught inside the CA and never sent as such ──────────────────────────────────────

/** Why the DER reader refused its input. */
export type DerErrorCode =
  /** The input ends inside an element, or an element runs past its container. */
  | 'DER_TRUNCATED'
  /** A length in an indefinite, over-long (more than 4 octets) or unreadable form. */
  | 'DER_LENGTH_INVALID'
  /** A multi-byte tag: none of the structures read here uses one. */
  | 'DER_TAG_UNSUPPORTED'
  /** An element other than the one the structure has at this place. */
  | 'DER_TAG_UNEXPECTED'
  /** Bytes after the top-level element. */
  | 'DER_TRAILING_BYTES'
  /** A well-formed element whose content is not allowed: an empty OID, a BIT STRING with unused bits. */
  | 'DER_VALUE_INVALID';

/**
 * Thrown by the DER reader (der.ts) and the parsers on top of it. Callers turn it into what their
 * client sees: `CA_CSR_MALFORMED` for a CSR, the `malformedRequest` status for an OCSP request.
 */
export class DerError extends Error {
  constructor(
    readonly code: DerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DerError';
  }
}
