import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runCli } from '../../common/src/cli.ts';
import { Store } from '../../common/src/store.ts';
import { AuditLog } from './audit-log.ts';
import { CertificateAuthority } from './authority.ts';
import { addAuditCommands } from './commands/audit.ts';
import { addCertificateCommands } from './commands/certificates.ts';
import type { CommandContext } from './commands/context.ts';
import { addInitCommand } from './commands/init.ts';
import { addServeCommand } from './commands/serve.ts';
import { loadCaConfig, PASSPHRASE_ENV } from './config.ts';
import { NotInitialised } from './errors.ts';
import { Inventory } from './inventory.ts';
import { readPassphrase } from './keys.ts';

interface GlobalOptions {
  config?: string;
  dataDir?: string;
  passphraseFile?: string;
}

/**
 * `packtrust-ca`: the onboarding staff's tool. Every command acts on the CA's data directory,
 * found through the configuration (defaults < file < `PACKTRUST_CA_*` < flags); the commands
 * themselves are in commands/, one file per group.
 */
export function createCli(): Command {
  const program = new Command('packtrust-ca')
    .description('packtrust certificate authority: issue, renew and revoke the certificates of the system')
    .option('--config <file>', 'configuration file (YAML or JSON); also PACKTRUST_CA_CONFIG')
    .option('--data-dir <dir>', 'CA data directory (default ./data/ca; also PACKTRUST_CA_DATA_DIR)')
    .option('--passphrase-file <file>', `file holding the CA key passphrase (else ${PASSPHRASE_ENV})`)
    .showHelpAfterError();

  const cli: CommandContext = {
    config(flags = {}) {
      const g = program.opts<GlobalOptions>();
      return loadCaConfig({ dataDir: g.dataDir, passphraseFile: g.passphraseFile, ...flags }, g.config);
    },
    passphrase: (c) => readPassphrase({ file: c.passphraseFile, envVar: PASSPHRASE_ENV }),
    async withRecords(fn) {
      const { dataDir } = cli.config();
      const path = join(dataDir, 'store');
      if (!existsSync(path)) throw new NotInitialised(`No CA in ${dataDir}: run "packtrust-ca init" first`);
      const store = Store.open({ path });
      try {
        fn(new Inventory(store), new AuditLog(store));
      } finally {
        await store.close();
      }
    },
    async withCa(fn) {
      const c = cli.config();
      const ca = await CertificateAuthority.open(c.dataDir, cli.passphrase(c));
      try {
        return await fn(ca, c);
      } finally {
        await ca.close();
      }
    },
  };
  addInitCommand(program, cli);
  addCertificateCommands(program, cli);
  addAuditCommands(program, cli);
  addServeCommand(program, cli);
  return program;
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
