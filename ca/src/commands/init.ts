import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { cliActor as actor } from '../../../common/src/cli.ts';
import { CertificateAuthority } from '../authority.ts';
import { OnboardingInvalid } from '../errors.ts';
import { KEY_ALGORITHMS, MIN_PASSPHRASE_LENGTH } from '../keys.ts';
import { type CommandContext, collect } from './context.ts';

/** `init`: creates the CA in the data directory, with its trust bundle and the first operator's credential. */
export function addInitCommand(program: Command, cli: CommandContext): void {
  program
    .command('init')
    .description('create the root CA, the issuing CA and the first operator certificate')
    .addOption(new Option('--key-algorithm <alg>', 'CA key algorithm').choices(KEY_ALGORITHMS))
    .option('--public-url <url>', 'base URL of the public listener, written into every certificate')
    .option('--ca-name <name>', 'name in the CA certificates (default packtrust)')
    .option('--dns <name>', 'DNS name of the admin listener (repeatable; default localhost)', collect)
    .option('--ip <address>', 'IP address of the admin listener (repeatable; default 127.0.0.1)', collect)
    .requiredOption('--operator-org <id>', 'organisation id of the first operator')
    .option('--operator-name <name>', 'name of the first operator')
    .option('--operator-out <dir>', 'where to write the operator key and certificate (default <data-dir>/operator)')
    .action(async (o) => {
      const c = cli.config({ keyAlgorithm: o.keyAlgorithm, publicUrl: o.publicUrl, caName: o.caName });
      const secret = cli.passphrase(c);
      if (secret.length < MIN_PASSPHRASE_LENGTH) {
        throw new OnboardingInvalid(`The CA passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`);
      }
      const { ca, operator } = await CertificateAuthority.init({
        dataDir: c.dataDir,
        passphrase: secret,
        keyAlgorithm: c.keyAlgorithm,
        publicUrl: c.publicUrl ?? `http://${c.host}:${c.publicPort}`,
        caName: c.caName,
        crlValidityHours: c.crlValidityHours,
        serverDns: o.dns ?? ['localhost'],
        serverIp: o.ip ?? ['127.0.0.1'],
        operator: { org: o.operatorOrg, name: o.operatorName ?? o.operatorOrg },
        actor: actor(),
      });
      const out = o.operatorOut ?? join(c.dataDir, 'operator');
      mkdirSync(out, { recursive: true, mode: 0o700 });
      writeFileSync(join(out, 'operator.key.pem'), operator.keyPem, { mode: 0o600 });
      writeFileSync(join(out, 'operator.pem'), operator.certificatePem + operator.chainPem);
      writeFileSync(join(c.dataDir, 'chain.pem'), ca.chainPem());
      await ca.close();
      console.log(`CA created in ${c.dataDir} (${c.keyAlgorithm})`);
      console.log(`  trust bundle:     ${join(c.dataDir, 'chain.pem')}`);
      console.log(`  operator key:     ${join(out, 'operator.key.pem')} (keep it secret)`);
      console.log(`  operator cert:    ${join(out, 'operator.pem')} serial ${operator.record.serial}`);
    });
}
