import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { z } from 'zod';
import {
  BadRequest,
  NotFound,
  PacktrustError,
  PayloadTooLarge,
  PROBLEM_CONTENT_TYPE,
  RequestTimeout,
  toPacktrustError,
  UnsupportedMediaType,
} from './errors.ts';
import type { Logger } from './log.ts';

export type HttpServer = FastifyInstance<Server | HttpsServer, IncomingMessage, ServerResponse, Logger>;

export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** Trust anchors for client certificates; with `requestCert` the server asks for one. */
  ca?: string | Buffer | (string | Buffer)[];
  requestCert?: boolean;
}

/**
 * How long a client may take, on every listener of every service: each service's configuration
 * schema takes these keys (`...httpTimeoutsSchema.shape`), and a listener made without them gets
 * these defaults. Without them a client that sends a byte every few seconds holds a connection,
 * and the memory of its request, for as long as it likes.
 */
export const httpTimeoutsSchema = z.object({
  /**
   * Milliseconds a client has to complete the TLS handshake, and then to send a request's headers
   * (from its first byte; on a new connection, from the connection). Answered 408 `REQUEST_TIMEOUT`.
   */
  headersTimeoutMs: z.coerce.number().int().min(50).max(300_000).default(10_000),
  /**
   * Milliseconds a client has to send a whole request, headers and body. The largest upload
   * (`maxBodyMb`, 64 MB) needs about 60 s at 10 Mbit/s. Answered 408 `REQUEST_TIMEOUT`.
   */
  requestTimeoutMs: z.coerce.number().int().min(50).max(3_600_000).default(120_000),
  /** Milliseconds a kept-alive connection may wait for its next request before it is closed. */
  keepAliveTimeoutMs: z.coerce.number().int().min(50).max(600_000).default(5_000),
  /**
   * Milliseconds a connection may go without any traffic either way, a request in progress
   * included, before it is closed. Longer than the hub feed's longest long-poll (60 s), which
   * sends nothing while it waits.
   */
  idleTimeoutMs: z.coerce.number().int().min(50).max(3_600_000).default(120_000),
});
export type HttpTimeouts = z.output<typeof httpTimeoutsSchema>;

export interface HttpServerOptions {
  logger: Logger;
  tls?: TlsOptions;
  bodyLimit?: number;
  /** Content types delivered to handlers as a raw Buffer (DER, uploads to be hashed). */
  binaryContentTypes?: string[];
  /** The service's configured timeouts; those not given keep the defaults of {@link httpTimeoutsSchema}. */
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * The one HTTP server factory: fastify with optional (mutual) TLS, RFC 9457 problem+json for every
 * error (malformed or timed-out requests included), raw-buffer parsing for binary content types,
 * and time limits on every connection ({@link httpTimeoutsSchema}).
 *
 * No body is read before it is wanted: a request for no route is answered 404 before its body is
 * read, as is a request that a route's `onRequest` hook refuses (an identity check), and such an
 * early answer closes the connection, so the rest of the body is never read either. What a route
 * may read is the route's business (`bodyLimit`, its hooks).
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const tls = options.tls;
  const timeouts = { ...httpTimeoutsSchema.parse({}), ...options.timeouts };
  // Node checks the header and request deadlines on a timer: every second, or more often for
  // deadlines shorter than a few seconds (tests), so a deadline is kept within a quarter of itself.
  const headersTimeout = Math.min(timeouts.headersTimeoutMs, timeouts.requestTimeoutMs);
  const node = {
    headersTimeout,
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // Per-request logging costs more than the hot routes themselves; failures are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    connectionTimeout: timeouts.idleTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    requestTimeout: timeouts.requestTimeoutMs,
    clientErrorHandler: answerClientError,
    ...(tls
      ? {
          https: {
            key: tls.key,
            cert: tls.cert,
            ...(tls.ca ? { ca: tls.ca } : {}),
            requestCert: tls.requestCert ?? false,
            // The handshake accepts any presented certificate; authorisation is decided per request
            // (chain, revocation, profile) so that the client gets a problem+json answer, not a reset.
            rejectUnauthorized: false,
            minVersion: 'TLSv1.2' as const,
            handshakeTimeout: timeouts.headersTimeoutMs,
            ...node,
          },
        }
      : { http: node }),
  }) as unknown as HttpServer;

  const binary = options.binaryContentTypes ?? [];
  if (binary.length > 0) {
    app.addContentTypeParser(binary, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  }

  // A request for no route is refused before its body is read (fastify's not-found handler would
  // read it first, up to `bodyLimit`). In `preParsing`, after every `onRequest` hook: a listener
  // whose gate covers unknown paths too (the CA's admin listener) keeps refusing strangers first.
  app.addHook('preParsing', async (request) => {
    if (request.is404) throw notFound(request);
  });
  app.setErrorHandler((err: FastifyError | PacktrustError, request, reply) => {
    const problem = fromFastifyError(err);
    if (problem.status >= 500) request.log.error({ err }, 'request failed');
    // Refused before its body was read (a hook, an unknown route): the connection closes after the
    // answer, so the client cannot make the server read, and throw away, the rest of that body.
    if (bodyUnread(request)) reply.header('connection', 'close');
    sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, notFound(request));
  });
  return app;
}

/**
 * A `preParsing` hook for a route whose body has one of `mediaTypes` (compared without
 * parameters, case-insensitively): any other is refused 415 before the body is read. A parser
 * that takes several types for the listener (the gateway's raw bodies) does not let a route be
 * sent the wrong one.
 */
export function acceptOnly(mediaTypes: readonly string[]) {
  const accepted = mediaTypes.map((t) => t.toLowerCase());
  return async (request: FastifyRequest): Promise<void> => {
    const sent = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (sent && accepted.includes(sent)) return;
    throw new UnsupportedMediaType(
      `${request.method} ${request.routeOptions.url} takes ${accepted.join(' or ')}, not ${sent || 'a body without a content type'}`,
    );
  };
}

const notFound = (request: FastifyRequest) => new NotFound(`No route for ${request.method} ${request.url}`);

/** Whether the request announced a body that has not been read (yet). */
function bodyUnread(request: FastifyRequest): boolean {
  const { headers } = request;
  const announced = headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0;
  return announced && !request.raw.complete;
}

/**
 * Node's `clientError`: a request that is not HTTP, or that did not arrive in time (the header and
 * request deadlines). Answered with a problem document, as everything else, and the connection
 * closed; nothing is written once an answer to this connection has begun (as Node's own handler).
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const problem =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new RequestTimeout('The request did not arrive within the time this listener allows')
      : new BadRequest('The request is not valid HTTP/1.1');
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !answering?.headersSent) {
    const body = JSON.stringify(problem.toProblem());
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

function sendProblem(reply: FastifyReply, error: PacktrustError): FastifyReply {
  return reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(error.toProblem()));
}

function fromFastifyError(err: FastifyError | PacktrustError): PacktrustError {
  if (err instanceof PacktrustError) return err;
  if (err.validation) {
    return new BadRequest(`Request ${err.validationContext ?? ''} is invalid: ${err.message}`.replace('  ', ' '), {
      errors: err.validation.map((v) => ({ path: v.instancePath, message: v.message })),
    });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new UnsupportedMediaType(err.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLarge(err.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new BadRequest(err.message);
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new BadRequest(err.message);
  return toPacktrustError(err);
}

/** The client's certificate chain as presented in the TLS handshake, leaf first (DER). */
export function peerCertificateChain(request: FastifyRequest): Buffer[] {
  const socket = request.raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return [];
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true);
  while (cert?.raw && !chain.some((c) => c.equals(cert.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** Listens and returns the base URL (`http(s)://host:port`), resolving port 0 to the real port. */
export async function listen(app: HttpServer, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address();
  const realPort = typeof address === 'object' && address ? address.port : port;
  const scheme = 'encrypted' in app.server || 'setSecureContext' in app.server ? 'https' : 'http';
  return `${scheme}://${host}:${realPort}`;
}
