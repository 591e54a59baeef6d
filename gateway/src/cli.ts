import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runCli, stopOnSignals } from '../../common/src/cli.ts';
import { createLogger } from '../../common/src/log.ts';
import { clientCommands } from './cli/clients.ts';
import type { CommandContext } from './cli/context.ts';
import { evidenceCommands } from './cli/evidence.ts';
import { keyCommands } from './cli/keys.ts';
import { prefixCommands } from './cli/prefixes.ts';
import { loadGatewayConfig, loadGatewayStoreConfig } from './config.ts';
import { HubStore } from './hub-store.ts';

/**
 * `packtrust-gateway`: run the hub's front door (`serve`), and the commands of onboarding staff
 * and auditors on its store, one group per file in cli/: `evidence`, `client`, `prefix`, `keys`.
 */
export function createCli(): Command {
  const program = new Command('packtrust-gateway')
    .description('packtrust hub gateway: signed mTLS uploads, evidence, change feed')
    .option('--config <file>', 'configuration file (YAML or JSON); also PACKTRUST_GATEWAY_CONFIG')
    .option('--data-dir <dir>', 'gateway data directory (default ./data/gateway)')
    .showHelpAfterError();
  const globals = () => program.opts<{ config?: string; dataDir?: string }>();
  const context: CommandContext = {
    config: (flags = {}) => {
      const g = globals();
      return loadGatewayConfig({ dataDir: g.dataDir, ...flags }, g.config);
    },
    storeConfig: () => loadGatewayStoreConfig({ dataDir: globals().dataDir }, globals().config),
    async withStore(fn) {
      const c = context.storeConfig();
      const store = new HubStore(join(c.dataDir, 'hub'), c.markets);
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    },
  };

  program
    .command('serve')
    .description('run the gateway')
    .option('--host <host>')
    .option('--port <port>')
    .action(async (o) => {
      const logger = createLogger('gateway');
      // Loaded here: the other commands need neither the HTTP stack nor oidc-provider.
      const { startGateway } = await import('./service.ts');
      const gateway = await startGateway(context.config({ host: o.host, port: o.port }), logger);
      logger.info({ url: gateway.url }, 'gateway listening');
      stopOnSignals(() => gateway.close());
    });
  evidenceCommands(program, context);
  clientCommands(program, context);
  prefixCommands(program, context);
  keyCommands(program, context);
  return program;
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
