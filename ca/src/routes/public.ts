import type { HttpServer } from '../../../common/src/http.ts';
import type { OpenApiContract } from '../../../common/src/openapi.ts';
import type { CertificateAuthority } from '../authority.ts';

/**
 * The public listener's routes, for relying parties before they trust anything (plain HTTP): the
 * CA certificates, the CRLs and the RFC 6960 OCSP responder, POST and the GET form of Appendix A.
 */
export async function publicRoutes(
  app: HttpServer,
  { ca, contract }: { ca: CertificateAuthority; contract: OpenApiContract },
): Promise<void> {
  // Whether the CA serves, nothing more (docs/operations.md, "Monitoring"): a CRL past its
  // nextUpdate (its refresh failing) stops every relying party. The figures are on the admin
  // listener's /metrics (routes/admin.ts), for operators.
  app.get('/health', { schema: contract.routeSchema('getHealth') }, async (_request, reply) =>
    Date.now() <= ca.meta().crlNextUpdate ? { status: 'ok' } : reply.code(503).send({ status: 'unavailable' }),
  );
  app.get('/ca/root.der', async (_req, reply) => reply.type('application/pkix-cert').send(ca.rootCertificate()));
  app.get('/ca/issuing.der', async (_req, reply) => reply.type('application/pkix-cert').send(ca.issuingCertificate()));
  app.get('/ca/chain.pem', async (_req, reply) => reply.type('application/x-pem-file').send(ca.chainPem()));
  app.get('/crl', async (_req, reply) =>
    reply.type('application/pkix-crl').header('cache-control', 'no-cache').send(ca.currentCrl()),
  );
  app.get('/crl/root', async (_req, reply) => reply.type('application/pkix-crl').send(ca.rootCrl()));
  app.post('/ocsp', async (request, reply) => {
    const body = request.body;
    const der = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
    return reply.type('application/ocsp-response').send(ca.ocsp.respond(der));
  });
  app.get('/ocsp/*', async (request, reply) => {
    const encoded = (request.params as { '*': string })['*'];
    const der = Buffer.from(decodeURIComponent(encoded), 'base64');
    return reply.type('application/ocsp-response').send(ca.ocsp.respond(der));
  });
}
