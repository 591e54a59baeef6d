import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import {
  BadRequest,
  NotFound,
  PacktrustError,
  PayloadTooLarge,
  PROBLEM_CONTENT_TYPE,
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

export interface HttpServerOptions {
  logger: Logger;
  tls?: TlsOptions;
  bodyLimit?: number;
  /** Content types delivered to handlers as a raw Buffer (DER, uploads to be hashed). */
  binaryContentTypes?: string[];
}

/**
 * The one HTTP server factory: fastify with optional (mutual) TLS, RFC 9457 problem+json for every
 * error, and raw-buffer parsing for binary content types.
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const tls = options.tls;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // Per-request logging costs more than the hot routes themselves; failures are logged below.
    logController: new LogController({ disableRequestLogging: true }),
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
          },
        }
      : {}),
  }) as unknown as HttpServer;

  const binary = options.binaryContentTypes ?? [];
  if (binary.length > 0) {
    app.addContentTypeParser(binary, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  }

  app.setErrorHandler((err: FastifyError | PacktrustError, request, reply) => {
    const problem = fromFastifyError(err);
    if (problem.status >= 500) request.log.error({ err }, 'request failed');
    sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, new NotFound(`No route for ${request.method} ${request.url}`));
  });
  return app;
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
