import { createHttpServer, type HttpServer, type HttpTimeouts, listen } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { OpenApiContract } from '../../common/src/openapi.ts';
import { addOperatorGate } from './admin-access.ts';
import type { CertificateAuthority } from './authority.ts';
import { adminRoutes } from './routes/admin.ts';
import { publicRoutes } from './routes/public.ts';

const contract = new OpenApiContract(new URL('../../openapi/ca.yaml', import.meta.url).pathname);

export interface CaServerOptions {
  host: string;
  publicPort: number;
  adminPort: number;
  /** Decrypts the admin listener's TLS key. */
  passphrase: string;
  crlRefreshMarginMinutes: number;
  /** How long a client may take on either listener (configuration; common/src/http.ts). */
  timeouts?: Partial<HttpTimeouts>;
  logger: Logger;
}

export interface RunningCaServer {
  publicUrl: string;
  adminUrl: string;
  close(): Promise<void>;
}

/** Starts the public listener (certificates, CRLs, OCSP) and the operator-only admin listener. */
export async function startCaServer(ca: CertificateAuthority, options: CaServerOptions): Promise<RunningCaServer> {
  const publicApp = createPublicApp(ca, options);
  const adminApp = createAdminApp(ca, options);
  let publicUrl: string;
  let adminUrl: string;
  try {
    publicUrl = await listen(publicApp, options.host, options.publicPort);
    adminUrl = await listen(adminApp, options.host, options.adminPort);
  } catch (err) {
    await Promise.all([publicApp.close(), adminApp.close()]);
    throw err;
  }
  const refresh = startCrlRefresh(ca, options);
  return {
    publicUrl,
    adminUrl,
    async close() {
      clearInterval(refresh);
      await Promise.all([publicApp.close(), adminApp.close()]);
    },
  };
}

/** Reissues the CRL before its nextUpdate, also when no revocation happened. */
function startCrlRefresh(ca: CertificateAuthority, options: CaServerOptions): NodeJS.Timeout {
  const marginMs = options.crlRefreshMarginMinutes * 60_000;
  const tick = () => {
    ca.refreshCrls({ marginMs, actor: 'ca-service' }).then(
      (produced) => produced && options.logger.info({ crlNumber: ca.meta().crlNumber }, 'CRL reissued'),
      (err: unknown) => options.logger.error({ err }, 'CRL refresh failed'),
    );
  };
  tick();
  const timer = setInterval(tick, Math.min(60_000, marginMs / 4));
  timer.unref();
  return timer;
}

function createPublicApp(ca: CertificateAuthority, options: CaServerOptions): HttpServer {
  const app = createHttpServer({
    logger: options.logger,
    binaryContentTypes: ['application/ocsp-request'],
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  app.register(publicRoutes, { ca, contract });
  return app;
}

/** Mutual TLS with the CA's own listener certificate; the operator gate covers every path. */
function createAdminApp(ca: CertificateAuthority, options: CaServerOptions): HttpServer {
  const tls = ca.serverCredentials(options.passphrase);
  const app = createHttpServer({
    logger: options.logger,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
    tls: {
      key: tls.key.export({ type: 'pkcs8', format: 'pem' }),
      cert: tls.certPem,
      ca: ca.chainPem(),
      requestCert: true,
    },
  });
  addOperatorGate(app, ca, options.logger);
  app.register(adminRoutes, { ca, contract });
  return app;
}
