import { defineError, type PacktrustError } from '../../common/src/errors.ts';

/**
 * The verifier node's error catalogue. The problem codes are part of the pharmacy API, listed in
 * openapi/verifier.yaml (openapi/test/error-codes.test.ts keeps the two in step) and never
 * renamed. Besides these a node sends the codes every service shares (common/src/errors.ts):
 * `BAD_REQUEST`, `UNAUTHENTICATED`, `NOT_FOUND`, `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`,
 * `INTERNAL`.
 *
 * The internal errors at the end concern the node's link to the hub. They carry a code for the
 * log and the tests, and never reach a pharmacy as they are.
 */

// Access: the caller's access token
/** The token does not verify (signature, issuer, audience, type), has expired, or is of another market. */
export const TokenInvalid = defineError('NODE_TOKEN_INVALID', 401, 'The access token is not valid for this verifier');
/** The token's client is on the market's deny-list: onboarding staff disabled it. */
export const ClientDisabled = defineError(
  'NODE_CLIENT_DISABLED',
  401,
  'This client has been disabled by onboarding staff',
);

// Serving: whether this node may answer at all
/** The replica is being loaded or resynchronised (a broken feed chain): it cannot be trusted yet. */
export const NotServing = defineError(
  'NODE_NOT_SERVING',
  503,
  'The node is resynchronising its replica; try another node',
);
/** The hub refuses this node's certificate: its replica no longer follows the hub (ARCHITECTURE.md). */
export const CertificateRevoked = defineError(
  'NODE_CERTIFICATE_REVOKED',
  503,
  "The hub refuses this node's certificate; this node answers nothing, use another node",
);

// Requests
/** The `dataMatrix` of a request is not a GS1 element string with product code, serial, batch and expiry. */
export const DataMatrixInvalid = defineError(
  'NODE_DATA_MATRIX_INVALID',
  400,
  'The Data Matrix content is not a valid pack identifier',
);
/**
 * The fields of a pack identifier break a GS1 rule the Data Matrix path checks too (check digit,
 * character set 82, YYMMDD date): no pack can carry it, so it is the caller's mistake, not an
 * unknown pack, and raises no alert (common/src/gs1.ts `validateIdentifier`).
 */
export const IdentifierInvalid = defineError(
  'NODE_IDENTIFIER_INVALID',
  400,
  'The pack identifier is not a valid GS1 unique identifier',
);
/** `dataMatrix` and a field beside it name different packs (fields equal to the Data Matrix's are taken). */
export const IdentifierConflict = defineError(
  'NODE_IDENTIFIER_CONFLICT',
  400,
  'The request names a pack twice, differently',
);
/**
 * `Accept-Signature` asks for what the node cannot sign: not one RFC 8941 dictionary member, a
 * component or parameter outside its policy (verifier/src/signed-answers.ts). Refused before the
 * request is acted on.
 */
export const AcceptSignatureInvalid = defineError(
  'NODE_ACCEPT_SIGNATURE_INVALID',
  400,
  'The node cannot make the signature Accept-Signature asks for',
);
/** `GET /v1/transactions/{txId}`: this node answered the caller no request with this transaction id. */
export const TxUnknown = defineError('NODE_TX_UNKNOWN', 404, 'No state change of this client has this transaction id');
/** A bulk state change names one pack twice: the request is refused whole, before any pack is acted on. */
export const PackRepeated = defineError('NODE_PACK_REPEATED', 400, 'A pack appears more than once in the request');
/** The client has as many bulk jobs waiting or running as a client may (bulk-jobs.ts). */
export const TooManyJobs = defineError('NODE_TOO_MANY_JOBS', 429, 'This client has too many bulk jobs unfinished');
/** `GET /v1/jobs/{jobId}` names no bulk job of the caller's (another client's, or one past its retention). */
export const JobUnknown = defineError('NODE_JOB_UNKNOWN', 404, 'No bulk job of this client has this id');
/** `/v1/packs/{op}` names no pack operation (verify has its own route). */
export const OperationUnknown = defineError('NODE_OPERATION_UNKNOWN', 404, 'Unknown pack operation');
/** `GET /v1/evidence/checkpoint` before the node witnessed one, or on a node without the log key. */
export const EvidenceNotWitnessed = defineError(
  'NODE_EVIDENCE_NOT_WITNESSED',
  404,
  'No checkpoint of the hub evidence log witnessed',
);

/** What the pharmacy is told when the hub refuses this node's certificate. */
export function certificateRevoked(refusal: HubRefused): PacktrustError {
  const why =
    refusal.hubCode === 'HUB_CLIENT_CERT_EXPIRED'
      ? "This node's certificate has expired"
      : refusal.hubCode === 'HUB_CLIENT_CERT_UNTRUSTED'
        ? "The hub no longer accepts this node's certificate"
        : "This node's certificate was revoked by the CA";
  return new CertificateRevoked(
    `${why}: it no longer receives recalls and decommissions from the hub, so it cannot answer. Use another node of the market.`,
  );
}

// Internal: the link to the hub

/** The codes of the node's internal errors. */
export type InternalErrorCode = 'NODE_HUB_UNAVAILABLE' | 'NODE_HUB_REFUSED' | 'NODE_FEED_BROKEN';

/** The hub could not be reached, or failed (5xx): the request may be tried again later. */
export class HubUnavailable extends Error {
  readonly code = 'NODE_HUB_UNAVAILABLE' satisfies InternalErrorCode;
}

/** The hub's codes that refuse the node's certificate itself (openapi/hub.yaml): no request of it will pass. */
const CERTIFICATE_REFUSALS = new Set([
  'HUB_CLIENT_CERT_REVOKED',
  'HUB_CLIENT_CERT_EXPIRED',
  'HUB_CLIENT_CERT_UNTRUSTED',
]);

/**
 * The hub answered with a refusal (4xx): trying the same request again gets the same answer.
 * `hubCode` is the code of the hub's problem (for example `HUB_CLIENT_CERT_REVOKED`), or
 * `HTTP_<status>` when the answer was not a problem document.
 */
export class HubRefused extends Error {
  readonly code = 'NODE_HUB_REFUSED' satisfies InternalErrorCode;

  constructor(
    readonly status: number,
    readonly hubCode: string,
    message: string,
    /** The hub problem's `detail`, what a pharmacy may be told (not the whole answer). */
    readonly hubDetail?: string,
  ) {
    super(message);
  }

  /**
   * Whether the refusal is of the request itself, so that sending it again gets the same answer:
   * every 4xx but 401 (the node's own certificate or signature: the node stops when the hub refuses
   * its certificate, see `certificateRefused`), 408 (the hub timed out reading it) and 429 (the hub
   * asks it to wait). A final refusal is the change's answer, or a dead letter (outbox.ts).
   */
  get final(): boolean {
    return this.status !== 401 && this.status !== 408 && this.status !== 429;
  }

  /** Whether the hub refuses the node's certificate (revoked, expired, not issued by its CA). */
  get certificateRefused(): boolean {
    return CERTIFICATE_REFUSALS.has(this.hubCode);
  }
}

/**
 * The feed or the snapshot does not continue the replica's chain (a gap, a broken link or hash,
 * a snapshot that carried other counts than it announced): the node stops serving and loads a
 * new snapshot.
 */
export class FeedIntegrityError extends Error {
  readonly code = 'NODE_FEED_BROKEN' satisfies InternalErrorCode;
}
