/**
 * The project's one error model: every failure that reaches a client is a {@link PacktrustError}
 * with a stable string `code` (part of the API, documented in the OpenAPI specs, never renamed),
 * an HTTP status, and a rendering as RFC 9457 problem details.
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://packtrust.dev/problems/';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  [extension: string]: unknown;
}

export class PacktrustError extends Error {
  readonly code: string;
  readonly status: number;
  readonly title: string;
  /** Extra members of the problem document (for example the list of failed items). */
  readonly extensions: Record<string, unknown>;

  constructor(
    code: string,
    status: number,
    title: string,
    detail: string,
    extensions: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(detail, options);
    this.name = 'PacktrustError';
    this.code = code;
    this.status = status;
    this.title = title;
    this.extensions = extensions;
  }

  toProblem(): ProblemDetails {
    return {
      type: TYPE_BASE + this.code.toLowerCase().replaceAll('_', '-'),
      title: this.title,
      status: this.status,
      detail: this.message,
      code: this.code,
      ...this.extensions,
    };
  }
}

export type ErrorClass = {
  new (detail: string, extensions?: Record<string, unknown>, options?: ErrorOptions): PacktrustError;
  readonly code: string;
  readonly status: number;
  readonly title: string;
};

/**
 * Declares an error with a fixed code, status and title, in the manner of `@fastify/error`:
 * `const CsrInvalid = defineError('CA_CSR_INVALID', 400, 'Malformed CSR'); throw new CsrInvalid('…')`.
 */
export function defineError(code: string, status: number, title: string): ErrorClass {
  const cls = class extends PacktrustError {
    static readonly code = code;
    static readonly status = status;
    static readonly title = title;
    constructor(detail: string, extensions: Record<string, unknown> = {}, options?: ErrorOptions) {
      super(code, status, title, detail, extensions, options);
      this.name = code;
    }
  };
  return cls;
}

// Errors every service can raise.
export const BadRequest = defineError('BAD_REQUEST', 400, 'The request is malformed');
export const Unauthenticated = defineError('UNAUTHENTICATED', 401, 'Authentication required');
export const NotFound = defineError('NOT_FOUND', 404, 'Not found');
export const PayloadTooLarge = defineError('PAYLOAD_TOO_LARGE', 413, 'The request body is too large');
export const UnsupportedMediaType = defineError('UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported content type');
/** The client took longer than the listener allows to send a request's headers, or the whole request (http.ts). */
export const RequestTimeout = defineError('REQUEST_TIMEOUT', 408, 'The request took too long to arrive');
const InternalError = defineError('INTERNAL', 500, 'Internal error');
export const ConfigInvalid = defineError('CONFIG_INVALID', 500, 'Invalid configuration');

/** Turns anything thrown into a PacktrustError, keeping internals out of the client's view. */
export function toPacktrustError(err: unknown): PacktrustError {
  if (err instanceof PacktrustError) return err;
  return new InternalError('An unexpected error occurred', {}, { cause: err });
}
