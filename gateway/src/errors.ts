import { defineError } from '../../common/src/errors.ts';

// The gateway's stable error codes; documented in openapi/hub.yaml.
export const CertificateRequired = defineError('HUB_CLIENT_CERT_REQUIRED', 401, 'A client certificate is required');
export const CertificateUntrusted = defineError(
  'HUB_CLIENT_CERT_UNTRUSTED',
  401,
  'The client certificate is not one the packtrust CA issued',
);
export const CertificateExpired = defineError('HUB_CLIENT_CERT_EXPIRED', 401, 'The client certificate has expired');
export const CertificateRevoked = defineError('HUB_CLIENT_CERT_REVOKED', 401, 'The client certificate is revoked');
export const ProfileNotAllowed = defineError(
  'HUB_PROFILE_NOT_ALLOWED',
  403,
  'This certificate profile may not use this API',
);
export const RevocationUnavailable = defineError(
  'HUB_REVOCATION_UNAVAILABLE',
  503,
  'The revocation list is not current; requests are refused until it is',
);
export const SignatureMissing = defineError(
  'HUB_SIGNATURE_MISSING',
  401,
  'The request carries no valid HTTP message signature',
);
export const SignatureInvalid = defineError('HUB_SIGNATURE_INVALID', 401, 'The HTTP message signature does not verify');
export const SignatureStale = defineError(
  'HUB_SIGNATURE_STALE',
  401,
  'The signature was created outside the accepted window',
);
export const SignatureReplayed = defineError('HUB_SIGNATURE_REPLAYED', 401, 'The signature nonce was already used');
export const DigestMismatch = defineError('HUB_DIGEST_MISMATCH', 400, 'Content-Digest does not match the body');

// Who acted (ARCHITECTURE.md, "Who acted"): a verifier node relays what a pharmacy did, with the
// pharmacy's access token as proof; it cannot vouch for anyone, nor act outside its market.
export const ActorUnproven = defineError(
  'HUB_ACTOR_UNPROVEN',
  403,
  'The request does not carry a valid access token of the client that acted',
);
export const EventTimeInvalid = defineError(
  'HUB_EVENT_TIME_INVALID',
  403,
  'The event time lies outside the validity of its access token, or in the future',
);
export const WrongMarket = defineError('HUB_WRONG_MARKET', 403, 'A verifier node acts only for its own market');
export const MarketUnknown = defineError(
  'HUB_MARKET_UNKNOWN',
  400,
  'The hub does not serve this market (not in its configured list)',
);
export const FeedUnknown = defineError('HUB_FEED_UNKNOWN', 404, 'No feed: the hub does not serve this market');
export const SnapshotBusy = defineError(
  'HUB_SNAPSHOT_BUSY',
  503,
  'No snapshot can be sent now (one per node certificate at a time, a few at once); try again shortly',
);
