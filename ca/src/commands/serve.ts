import type { Command } from 'commander';
import { stopOnSignals } from '../../../common/src/cli.ts';
import { createLogger } from '../../../common/src/log.ts';
import { CertificateAuthority } from '../authority.ts';
import { startCaServer } from '../server.ts';
import type { CommandContext } from './context.ts';

/** `serve`: runs the CA's HTTP service until SIGINT or SIGTERM. */
export function addServeCommand(program: Command, cli: CommandContext): void {
  program
    .command('serve')
    .description('run the HTTP service (public CRL/OCSP listener and the operator admin API)')
    .option('--host <host>', 'listen address')
    .option('--public-port <port>', 'public listener port')
    .option('--admin-port <port>', 'admin listener port')
    .action(async (o) => {
      const c = cli.config({ host: o.host, publicPort: o.publicPort, adminPort: o.adminPort });
      const secret = cli.passphrase(c);
      const ca = await CertificateAuthority.open(c.dataDir, secret);
      const logger = createLogger('ca');
      const server = await startCaServer(ca, {
        host: c.host,
        publicPort: c.publicPort,
        adminPort: c.adminPort,
        passphrase: secret,
        crlRefreshMarginMinutes: c.crlRefreshMarginMinutes,
        timeouts: c,
        logger,
      });
      logger.info({ public: server.publicUrl, admin: server.adminUrl }, 'CA listening');
      stopOnSignals(async () => {
        await server.close();
        await ca.close();
      });
    });
}
