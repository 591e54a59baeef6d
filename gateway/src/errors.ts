import { defineError } from '../../common/src/errors.ts';

/**
 * Every error the gateway raises, grouped by area: the codes are part of its API (the HTTP ones
 * are listed in openapi/hub.yaml, the command-line ones in docs/onboarding.md) and are never
 * renamed. Each entry says when it is thrown. The codes every service shares come from
 * common/src/errors.ts and are re-exported here, so that this file is the gateway's whole list.
 * Internal faults, at the end, carry a code for logs and tests; a client that meets one is told
 * only 500 `INTERNAL`.
 */

// ── Shared codes (common/src/errors.ts) ─────────────────────────────────────────────────────────

export {
  /** 400 `BAD_REQUEST`: a body that is not JSON, a failed query or route schema, an upload without serials. */
  BadRequest,
  /** 500 `CONFIG_INVALID`: the configuration or a file it names cannot be used (at start, and by commands). */
  ConfigInvalid,
  /** 404 `NOT_FOUND`: no such route, OAuth endpoint the hub does not offer, batch of an own product, or OAuth client. */
  NotFound,
  /** 413 `PAYLOAD_TOO_LARGE`: a body over `maxBodyMb`, or an upload of more than 1,000,000 serials. */
  PayloadTooLarge,
} from '../../common/src/errors.ts';

// ── Client certificates (client-identity.ts, trust.ts) ──────────────────────────────────────────

/** No client certificate was presented in the TLS handshake. */
export const CertificateRequired = defineError('HUB_CLIENT_CERT_REQUIRED', 401, 'A client certificate is required');
/** The certificate cannot be parsed, was not issued by the issuing CA, is not valid yet, or names no profile or organisation. */
export const CertificateUntrusted = defineError(
  'HUB_CLIENT_CERT_UNTRUSTED',
  401,
  'The client certificate is not one the packtrust CA issued',
);
/** The certificate is past its notAfter. */
export const CertificateExpired = defineError('HUB_CLIENT_CERT_EXPIRED', 401, 'The client certificate has expired');
/** The certificate is on the CRL the gateway holds (checked on every request, and every second of a feed long-poll). */
export const CertificateRevoked = defineError('HUB_CLIENT_CERT_REVOKED', 401, 'The client certificate is revoked');
/** The certificate's profile is not one the route group allows (routes/*.ts). */
export const ProfileNotAllowed = defineError(
  'HUB_PROFILE_NOT_ALLOWED',
  403,
  'This certificate profile may not use this API',
);
/** The gateway holds no CRL yet, or the one it holds is past its nextUpdate: no request is served. */
export const RevocationUnavailable = defineError(
  'HUB_REVOCATION_UNAVAILABLE',
  503,
  'The revocation list is not current; requests are refused until it is',
);

// ── Signed writes (signed-request.ts, signed-write.ts) ──────────────────────────────────────────

/** No parsable signature, not exactly one with the certificate's `keyid`, components, `created` or `nonce` missing. */
export const SignatureMissing = defineError(
  'HUB_SIGNATURE_MISSING',
  401,
  'The request carries no valid HTTP message signature',
);
/**
 * The signature does not verify with the certificate's key (its `@target-uri` is read with the
 * hub's public URL), names another algorithm than the key's, or has an `expires` before `created`.
 */
export const SignatureInvalid = defineError('HUB_SIGNATURE_INVALID', 401, 'The HTTP message signature does not verify');
/** `created` lies outside ±`signatureWindowSeconds` of the gateway's clock. */
export const SignatureStale = defineError(
  'HUB_SIGNATURE_STALE',
  401,
  'The signature was created outside the accepted window',
);
/** The signature's `expires` parameter (RFC 9421 §2.3) lies in the past. */
export const SignatureExpired = defineError('HUB_SIGNATURE_EXPIRED', 401, 'The signature has expired');
/** The signature's nonce was already used by this certificate (checked again inside the write transaction). */
export const SignatureReplayed = defineError('HUB_SIGNATURE_REPLAYED', 401, 'The signature nonce was already used');
/** `Content-Digest` is missing, of no accepted algorithm, or does not match the body as received. */
export const DigestMismatch = defineError('HUB_DIGEST_MISMATCH', 400, 'Content-Digest does not match the body');

// ── Products and batches (routes/manufacturer.ts, master-data.ts, batches.ts, prefixes.ts) ──────

/** A body that breaks the contract's schema, a bad GTIN check digit, batch id, expiry or serial, a withdrawn product. */
export const MasterDataInvalid = defineError('HUB_MASTER_DATA_INVALID', 400, 'The master data is invalid');
/** The product is unknown or another organisation's (the two are not told apart). */
export const NotOwner = defineError('HUB_NOT_OWNER', 403, 'Only the organisation that owns the product may do this');
/** A new product code is under no GS1 company prefix of the caller's organisation (asked again inside the write). */
export const PrefixNotOwned = defineError(
  'HUB_PREFIX_NOT_OWNED',
  403,
  "The product code is not under a GS1 company prefix of the caller's organisation",
);
/** A product names a market that is not in the hub's configured `markets`; with `errors`. */
export const MarketUnknown = defineError(
  'HUB_MARKET_UNKNOWN',
  400,
  'The hub does not serve this market (not in its configured list)',
);
/**
 * A product update would copy more packs to the markets it adds than one transaction is allowed
 * to (routes/manufacturer.ts `MAX_PACKS_COPIED`; docs/domain.md §8).
 */
export const MarketAdditionTooLarge = defineError(
  'HUB_MARKET_ADDITION_TOO_LARGE',
  422,
  'Adding these markets would copy too many packs in one write; add one market at a time',
);
/** A serial of the upload is already registered for the product; with `failed` and the first 100 `items`. */
export const DuplicateSerials = defineError(
  'HUB_DUPLICATE_SERIAL',
  409,
  'Serial numbers must be unique per product for life',
);
/** An upload of packs for a batch whose expiry date has passed (unless `acceptExpiredBatches`). */
export const BatchExpired = defineError('HUB_BATCH_EXPIRED', 422, 'The batch has expired');
/** Packs for a recalled or withdrawn batch or a withdrawn product, or a recall or withdrawal made twice. */
export const BatchClosed = defineError('HUB_BATCH_CLOSED', 409, 'The batch is recalled or withdrawn');
/** The serials fail the randomisation checks (policy `reject`); with the `randomisation` report. */
export const RandomisationRejected = defineError(
  'HUB_RANDOMISATION_REJECTED',
  422,
  'The serial numbers are not random enough (Delegated Regulation 2016/161 Art. 4)',
);

// ── Who acted (actors.ts, routes/nodes.ts; ARCHITECTURE.md, "Who acted") ───────────────────────
// A verifier node relays what a pharmacy did, with the pharmacy's access token as proof; it
// cannot vouch for anyone, nor act outside its market.

/** A forwarded access token does not verify (signature, issuer, `typ`, audience, expiry). */
export const ActorUnproven = defineError(
  'HUB_ACTOR_UNPROVEN',
  403,
  'The request does not carry a valid access token of the client that acted',
);
/** An event time lies outside its token's validity, or in the future. */
export const EventTimeInvalid = defineError(
  'HUB_EVENT_TIME_INVALID',
  403,
  'The event time lies outside the validity of its access token, or in the future',
);
/** A node acts, or reads a feed, for a market other than its certificate's, or for a product not sold there. */
export const WrongMarket = defineError('HUB_WRONG_MARKET', 403, 'A verifier node acts only for its own market');
/** A verification organisation asks for the alerts of a market other than its certificate's. */
export const MarketNotYours = defineError(
  'HUB_MARKET_NOT_YOURS',
  403,
  "A verification organisation reads only its own market's alerts",
);

// ── Feed (routes/feed.ts, feed.ts) ──────────────────────────────────────────────────────────────

/** The feed of a market the hub does not serve was asked for. */
export const FeedUnknown = defineError('HUB_FEED_UNKNOWN', 404, 'No feed: the hub does not serve this market');
/** A snapshot is already being sent to this certificate, or 16 are being sent in all. */
export const SnapshotBusy = defineError(
  'HUB_SNAPSHOT_BUSY',
  503,
  'No snapshot can be sent now (one per node certificate at a time, a few at once); try again shortly',
);

// ── OAuth clients and signing keys (oauth/) ─────────────────────────────────────────────────────

/** `client add` with a market not served, an unknown role, a bad location or organisation id, or no usable JWKS. */
export const ClientInvalid = defineError('OAUTH_CLIENT_INVALID', 400, 'Invalid client registration');
/**
 * A token signing key does not decrypt: the passphrase is wrong or the store is damaged. Raised at
 * start and by `keys`, and under /oauth when the running provider reloads keys rotated with
 * another passphrase.
 */
export const KeyPassphraseInvalid = defineError(
  'OAUTH_KEY_PASSPHRASE_INVALID',
  500,
  'Cannot decrypt the token signing keys',
);

// ── Prefix registry (`packtrust-gateway prefix`, prefixes.ts; docs/onboarding.md) ────────────────

/** The prefix is not 4 to 12 digits, or the organisation id is not one the CA would write. */
export const PrefixInvalid = defineError('HUB_PREFIX_INVALID', 400, 'Not a GS1 company prefix or organisation id');
/** `prefix add` of a prefix registered for another organisation, overlapping one, or over another's products. */
export const PrefixOverlap = defineError(
  'HUB_PREFIX_OVERLAP',
  409,
  'The prefix overlaps a registered prefix or products of another organisation',
);
/** `prefix move` or `prefix remove` of a prefix that is not registered. */
export const PrefixUnknown = defineError('HUB_PREFIX_UNKNOWN', 404, 'No such prefix is registered');
/** `prefix remove` while products are registered under the prefix. */
export const PrefixInUse = defineError('HUB_PREFIX_IN_USE', 409, 'Products are registered under the prefix');

// ── Evidence (`packtrust-gateway evidence`) ─────────────────────────────────────────────────────

/** `evidence export` of a record number the log does not hold. */
export const EvidenceUnknown = defineError('HUB_EVIDENCE_UNKNOWN', 404, 'No such evidence record');
/** A proof asked for a record or a tree size the log does not hold (`GET /v1/evidence/proofs/…`). */
export const EvidenceProofOutOfRange = defineError(
  'HUB_EVIDENCE_PROOF_OUT_OF_RANGE',
  400,
  'The evidence log holds no such record or tree size',
);
/** No checkpoint has been signed yet (an empty log). */
export const EvidenceNoCheckpoint = defineError('HUB_EVIDENCE_NO_CHECKPOINT', 404, 'No checkpoint has been signed yet');

// ── Internal faults ─────────────────────────────────────────────────────────────────────────────
// Faults of the gateway or of what it was given, not of a request. They are not PacktrustErrors:
// a request that meets one is answered 500 `INTERNAL` (common/src/errors.ts toPacktrustError),
// and the code stays in the log.

/** An internal fault of the gateway, with a stable code. */
export class GatewayFault extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = code;
  }
}

/** Declares a fault with a fixed code, the way `defineError` declares an error. */
function defineFault(code: string) {
  return class extends GatewayFault {
    static readonly code = code;
    constructor(message: string, options?: ErrorOptions) {
      super(code, message, options);
    }
  };
}

/** The CA chain file does not hold the issuing CA then the root, or the root did not sign the issuing CA (at start). */
export const CaChainInvalid = defineFault('HUB_CA_CHAIN_INVALID');
/**
 * The CA's CRL endpoint could not be reached, answered with an error status, or did not answer in
 * full within `caDeadlineMs`; the poll logs it and keeps the CRL it holds.
 */
export const CrlUnavailable = defineFault('HUB_CRL_UNAVAILABLE');
/** A fetched CRL does not verify with the issuing CA's key, or is older than the one held; it is ignored. */
export const CrlRejected = defineFault('HUB_CRL_REJECTED');
/** The gateway's own key cannot make a signature of an accepted algorithm, so no receipt can be signed. */
export const ReceiptKeyUnsupported = defineFault('HUB_RECEIPT_KEY_UNSUPPORTED');
/** The evidence log moved inside a write's own transaction: the receipt would name the wrong record. */
export const EvidenceSequenceMoved = defineFault('HUB_EVIDENCE_SEQUENCE_MOVED');
/** The evidence key file is missing, unreadable or not an Ed25519 private key (at start). */
export const EvidenceKeyInvalid = defineFault('HUB_EVIDENCE_KEY_INVALID');
/**
 * The evidence tree is not one log with the last tree the gateway signed (at a write, a
 * checkpoint, or at start): the store was changed outside the gateway. Nothing is signed.
 */
export const EvidenceTreeTampered = defineFault('HUB_EVIDENCE_TREE_TAMPERED');
/** A record is missing from the middle of the evidence log, found while building its tree (at start). */
export const EvidenceLogBroken = defineFault('HUB_EVIDENCE_LOG_BROKEN');
