import { defineError } from '../../common/src/errors.ts';

// The CA's stable error codes; documented in openapi/ca.yaml.
export const CsrMalformed = defineError('CA_CSR_MALFORMED', 400, 'The certificate signing request cannot be parsed');
export const CsrSignatureInvalid = defineError(
  'CA_CSR_SIGNATURE_INVALID',
  400,
  'The CSR signature does not verify (no proof of possession)',
);
export const KeyRejected = defineError('CA_KEY_REJECTED', 400, 'The public key is weak or of an unsupported type');
export const ProfileUnknown = defineError('CA_PROFILE_UNKNOWN', 400, 'Unknown certificate profile');
export const OnboardingInvalid = defineError('CA_ONBOARDING_INVALID', 400, 'The onboarding data is invalid');
export const SerialUnknown = defineError('CA_SERIAL_UNKNOWN', 404, 'No certificate with this serial number');
export const AlreadyRevoked = defineError('CA_ALREADY_REVOKED', 409, 'The certificate is already revoked');
export const NotRenewable = defineError('CA_NOT_RENEWABLE', 409, 'The certificate cannot be renewed');
export const ReasonInvalid = defineError('CA_REASON_INVALID', 400, 'Unknown or unsupported revocation reason');
export const NotInitialised = defineError('CA_NOT_INITIALISED', 500, 'The CA has not been initialised');
export const AlreadyInitialised = defineError('CA_ALREADY_INITIALISED', 409, 'The CA is already initialised');
export const PassphraseInvalid = defineError('CA_PASSPHRASE_INVALID', 500, 'The CA key passphrase is missing or wrong');
export const ClientCertificateRequired = defineError(
  'CA_CLIENT_CERT_REQUIRED',
  401,
  'A valid client certificate issued by this CA is required',
);
export const OperatorRequired = defineError('CA_OPERATOR_REQUIRED', 403, 'Only operator certificates may use this API');
