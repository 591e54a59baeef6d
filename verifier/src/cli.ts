import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runCli, stopOnSignals } from '../../common/src/cli.ts';
import { ConfigInvalid } from '../../common/src/errors.ts';
import { createLogger } from '../../common/src/log.ts';
import { loadVerifierConfig } from './config.ts';
import { startVerifierNode } from './service.ts';

/** `packtrust-verifier`: run a market's verifier node. */
export function createCli(): Command {
  const program = new Command('packtrust-verifier')
    .description('packtrust verifier node')
    .option('--config <file>')
    .showHelpAfterError();
  program
    .command('serve')
    .description('replicate the market from the hub and answer pharmacies')
    .option('--market <XX>')
    .option('--node-id <id>')
    .option('--port <port>')
    .action(async (o) => {
      const c = loadVerifierConfig(
        { market: o.market, nodeId: o.nodeId, port: o.port },
        program.opts<{ config?: string }>().config,
      );
      const read = (f: string, what: string) => {
        try {
          return readFileSync(f, 'utf8');
        } catch (err) {
          throw new ConfigInvalid(`Cannot read the ${what} ${f}: ${(err as NodeJS.ErrnoException).code ?? err}`);
        }
      };
      const logger = createLogger(`verifier-${c.nodeId}`);
      const node = await startVerifierNode({
        market: c.market,
        nodeId: c.nodeId,
        hubUrl: c.hubUrl,
        issuer: c.issuer ?? `${c.hubUrl}/oauth`,
        audience: c.audienceTemplate.replace('{market}', c.market),
        dataDir: c.dataDir ?? `./data/verifier/${c.nodeId}`,
        host: c.host,
        port: c.port,
        certPem: read(c.certFile, 'node certificate'),
        keyPem: read(c.keyFile, 'node key'),
        caPem: read(c.caChainFile, 'CA chain'),
        feedWaitMs: c.feedWaitMs,
        hubDeadlineMs: c.hubDeadlineMs,
        feedPageSize: c.feedPageSize,
        bulkSyncMaxPacks: c.bulkSyncMaxPacks,
        bulkJobRetentionSeconds: c.bulkJobRetentionHours * 3600,
        bulkMaxJobsPerClient: c.bulkMaxJobsPerClient,
        timeouts: c,
        ...(c.evidenceLogKey ? { evidenceLogKey: c.evidenceLogKey } : {}),
        alertWindowMs: c.alertWindowMs,
        logger,
      });
      logger.info({ url: node.url, market: c.market, nodeId: c.nodeId }, 'verifier listening');
      stopOnSignals(() => node.close());
    });
  return program;
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
