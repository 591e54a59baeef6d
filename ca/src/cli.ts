import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { cliActor as actor, runCli, stopOnSignals } from '../../common/src/cli.ts';
import { createLogger } from '../../common/src/log.ts';
import { toPem } from '../../common/src/pki.ts';
import { Store } from '../../common/src/store.ts';
import { AuditLog } from './audit-log.ts';
import { CertificateAuthority, type IssuedCertificate, normaliseSerial } from './authority.ts';
import { type CaConfig, loadCaConfig, PASSPHRASE_ENV } from './config.ts';
import { parseReason } from './crl.ts';
import { NotInitialised, OnboardingInvalid, SerialUnknown } from './errors.ts';
import { type CertRecord, Inventory, statusOf } from './inventory.ts';
import { KEY_ALGORITHMS, MIN_PASSPHRASE_LENGTH, readPassphrase } from './keys.ts';
import { buildPkcs12, readPrivateKey } from './p12.ts';
import { PROFILE_NAMES } from './profiles.ts';
import { startCaServer } from './server.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface GlobalOptions {
  config?: string;
  dataDir?: string;
  passphraseFile?: string;
}

/** `packtrust-ca`: the onboarding staff's tool. Every command acts on the CA's data directory. */
export function createCli(): Command {
  const program = new Command('packtrust-ca')
    .description('packtrust certificate authority: issue, renew and revoke the certificates of the system')
    .option('--config <file>', 'configuration file (YAML or JSON); also PACKTRUST_CA_CONFIG')
    .option('--data-dir <dir>', 'CA data directory (default ./data/ca; also PACKTRUST_CA_DATA_DIR)')
    .option('--passphrase-file <file>', `file holding the CA key passphrase (else ${PASSPHRASE_ENV})`)
    .showHelpAfterError();

  /** The configuration with the global flags and a command's own flags on top. */
  const config = (flags: Record<string, unknown> = {}): CaConfig => {
    const g = program.opts<GlobalOptions>();
    return loadCaConfig({ dataDir: g.dataDir, passphraseFile: g.passphraseFile, ...flags }, g.config);
  };
  const passphrase = (c: CaConfig) => readPassphrase({ file: c.passphraseFile, envVar: PASSPHRASE_ENV });
  const withCa = async <T>(fn: (ca: CertificateAuthority, c: CaConfig) => Promise<T>): Promise<T> => {
    const c = config();
    const ca = await CertificateAuthority.open(c.dataDir, passphrase(c));
    try {
      return await fn(ca, c);
    } finally {
      await ca.close();
    }
  };
  /** Read-only commands open the inventory and the audit log alone: no CA key, so no passphrase. */
  const withRecords = async (fn: (inventory: Inventory, audit: AuditLog) => void): Promise<void> => {
    const { dataDir } = config();
    const path = join(dataDir, 'store');
    if (!existsSync(path)) throw new NotInitialised(`No CA in ${dataDir}: run "packtrust-ca init" first`);
    const store = Store.open({ path });
    try {
      fn(new Inventory(store), new AuditLog(store));
    } finally {
      await store.close();
    }
  };

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
      const c = config({ keyAlgorithm: o.keyAlgorithm, publicUrl: o.publicUrl, caName: o.caName });
      const secret = passphrase(c);
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

  program
    .command('issue')
    .description('issue a certificate from a CSR and the onboarding data')
    .requiredOption('--csr <file>', 'PKCS#10 request, PEM or DER')
    .addOption(new Option('--profile <profile>', 'certificate profile').choices(PROFILE_NAMES).makeOptionMandatory())
    .requiredOption('--org <id>', 'organisation id (goes into the certificate)')
    .option('--name <name>', 'display name (CN); default the organisation id')
    .option('--market <XX>', 'ISO 3166 market (verifier-node)')
    .option('--dns <name>', 'DNS subject alternative name (repeatable)', collect)
    .option('--ip <address>', 'IP subject alternative name (repeatable)', collect)
    .requiredOption('--out <file>', 'where to write the certificate (PEM, followed by the chain)')
    .action(async (o) =>
      withCa(async (ca) => {
        const issued = await ca.issue(
          {
            csr: readInput(o.csr, 'CSR'),
            profile: o.profile,
            org: o.org,
            name: o.name,
            market: o.market,
            dns: o.dns,
            ip: o.ip,
          },
          actor(),
        );
        writeIssued(o.out, issued);
      }),
    );

  program
    .command('renew')
    .description('issue a successor certificate with the same onboarding data')
    .requiredOption('--serial <serial>', 'serial number of the certificate to renew')
    .option('--csr <file>', 'CSR for a new key (default: keep the key)')
    .requiredOption('--out <file>', 'where to write the new certificate')
    .action(async (o) =>
      withCa(async (ca) => {
        const issued = await ca.renew(o.serial, o.csr ? readInput(o.csr, 'CSR') : undefined, actor());
        writeIssued(o.out, issued);
      }),
    );

  program
    .command('revoke')
    .description('revoke a certificate; a new CRL is published at once')
    .requiredOption('--serial <serial>', 'serial number')
    .requiredOption(
      '--reason <reason>',
      'keyCompromise, affiliationChanged, superseded, cessationOfOperation, ...',
      parseReasonArg,
    )
    .action(async (o) =>
      withCa(async (ca) => {
        const record = await ca.revoke(o.serial, o.reason, actor());
        console.log(`revoked ${record.serial} (${o.reason}); CRL number ${ca.meta().crlNumber}`);
      }),
    );

  program
    .command('list')
    .description('list issued certificates')
    .option('--org <id>', 'only this organisation')
    .addOption(new Option('--status <status>', 'only this status').choices(['valid', 'revoked', 'expired']))
    .option('--json', 'JSON output')
    .action(async (o) =>
      withRecords((inventory) => {
        const records = inventory.list({ org: o.org, status: o.status });
        if (o.json) console.log(JSON.stringify(records.map(summary), null, 2));
        else for (const r of records) console.log(formatLine(r));
        if (!o.json) console.error(`${records.length} certificate(s)`);
      }),
    );

  program
    .command('show')
    .description('show one certificate')
    .requiredOption('--serial <serial>', 'serial number')
    .option('--pem', 'print the certificate as PEM')
    .action(async (o) =>
      withRecords((inventory) => {
        const serial = normaliseSerial(o.serial);
        const r = serial ? inventory.get(serial) : undefined;
        if (!r) throw new SerialUnknown(`No certificate with serial number ${o.serial}`);
        console.log(o.pem ? toPem(r.der, 'CERTIFICATE').trimEnd() : JSON.stringify(summary(r), null, 2));
      }),
    );

  program
    .command('crl')
    .description('write the current CRL of the issuing CA')
    .requiredOption('--out <file>', 'output file')
    .option('--pem', 'PEM instead of DER')
    .option('--refresh', 'produce a new CRL first')
    .action(async (o) =>
      withCa(async (ca) => {
        if (o.refresh) await ca.refreshCrls({ marginMs: 0, force: true, actor: actor() });
        const der = ca.currentCrl();
        writeFileSync(o.out, o.pem ? toPem(der, 'X509 CRL') : der);
        console.log(`wrote CRL number ${ca.meta().crlNumber} to ${o.out}`);
      }),
    );

  program
    .command('export-p12')
    .description('bundle a key that staff generated with its issued certificate and chain (PKCS#12)')
    .requiredOption('--serial <serial>', 'serial number of the issued certificate')
    .requiredOption('--key <file>', 'the private key (PEM)')
    .requiredOption('--out <file>', 'output .p12 file')
    .option('--password-file <file>', 'file with the bundle password (else PACKTRUST_P12_PASSWORD)')
    .action(async (o) =>
      withCa(async (ca) => {
        const record = ca.show(o.serial);
        const password = readSecret(o.passwordFile, 'PACKTRUST_P12_PASSWORD', 'bundle password');
        const key = readPrivateKey(readInput(o.key, 'key'));
        const keySpki = createPublicDer(key);
        const certSpki = publicKeyOfRecord(record);
        if (!certSpki.equals(keySpki)) {
          throw new OnboardingInvalid(`The key in ${o.key} does not belong to certificate ${record.serial}`);
        }
        const meta = ca.meta();
        const p12 = buildPkcs12({
          key,
          certificate: record.der,
          chain: [meta.issuingCert, meta.rootCert],
          password,
          friendlyName: record.name,
        });
        writeFileSync(o.out, p12, { mode: 0o600 });
        await ca.recordExport(record.serial, actor());
        console.log(`wrote ${o.out}`);
      }),
    );

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('recompute the chain and report the first broken entry')
    .option('--from <seq>', 'start at this entry', (v) => positiveInt(v), 1)
    .action(async (o) =>
      withRecords((_, auditLog) => {
        const result = auditLog.verify(o.from);
        if (result.ok) {
          console.log(`audit log intact: ${result.checked} entries checked, last ${result.lastSeq}`);
          return;
        }
        console.error(`audit log BROKEN at entry ${result.firstBroken.seq}: ${result.firstBroken.reason}`);
        process.exitCode = 3;
      }),
    );
  audit
    .command('list')
    .description('print entries')
    .option('--from <seq>', 'first entry', (v) => positiveInt(v), 1)
    .option('--limit <n>', 'at most this many', (v) => positiveInt(v), 100)
    .action(async (o) =>
      withRecords((_, auditLog) => {
        let n = 0;
        for (const e of auditLog.entries(o.from)) {
          const b = e.body;
          console.log(
            `${e.seq}\t${b.time}\t${b.actor}\t${b.action}\t${b.serial ?? '-'}\t${b.outcome}${b.code ? ` ${b.code}` : ''}`,
          );
          if (++n >= o.limit) break;
        }
      }),
    );

  program
    .command('serve')
    .description('run the HTTP service (public CRL/OCSP listener and the operator admin API)')
    .option('--host <host>', 'listen address')
    .option('--public-port <port>', 'public listener port')
    .option('--admin-port <port>', 'admin listener port')
    .action(async (o) => {
      const c = config({ host: o.host, publicPort: o.publicPort, adminPort: o.adminPort });
      const secret = passphrase(c);
      const ca = await CertificateAuthority.open(c.dataDir, secret);
      const logger = createLogger('ca');
      const server = await startCaServer(ca, {
        host: c.host,
        publicPort: c.publicPort,
        adminPort: c.adminPort,
        passphrase: secret,
        crlRefreshMarginMinutes: c.crlRefreshMarginMinutes,
        logger,
      });
      logger.info({ public: server.publicUrl, admin: server.adminUrl }, 'CA listening');
      stopOnSignals(async () => {
        await server.close();
        await ca.close();
      });
    });

  return program;
}

function parseReasonArg(value: string) {
  try {
    return parseReason(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new OnboardingInvalid(`Cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

function readSecret(file: string | undefined, envVar: string, what: string): string {
  const value = file ? readInput(file, what).toString('utf8').split(/\r?\n/)[0] : process.env[envVar];
  if (!value || value.length < 8)
    throw new OnboardingInvalid(`A ${what} of at least 8 characters is needed (--password-file or ${envVar})`);
  return value;
}

function writeIssued(out: string, issued: IssuedCertificate): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, issued.certificatePem + issued.chainPem);
  const r = issued.record;
  console.log(
    `issued ${r.profile} certificate ${r.serial} for ${r.org}, valid until ${new Date(r.notAfter).toISOString()}`,
  );
  console.log(`wrote ${out}`);
}

function summary(r: CertRecord) {
  const { der: _der, ...rest } = r;
  return {
    ...rest,
    status: statusOf(r),
    notBefore: new Date(r.notBefore).toISOString(),
    notAfter: new Date(r.notAfter).toISOString(),
    issuedAt: new Date(r.issuedAt).toISOString(),
    ...(r.revokedAt !== undefined ? { revokedAt: new Date(r.revokedAt).toISOString() } : {}),
  };
}

function formatLine(r: CertRecord): string {
  return [
    r.serial,
    r.profile.padEnd(13),
    statusOf(r).padEnd(7),
    r.org,
    r.market ?? '-',
    new Date(r.notAfter).toISOString().slice(0, 10),
    r.name,
  ].join('  ');
}

function createPublicDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

function publicKeyOfRecord(r: CertRecord): Buffer {
  return createPublicKey({ key: toPem(r.der, 'CERTIFICATE'), format: 'pem' }).export({ type: 'spki', format: 'der' });
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
