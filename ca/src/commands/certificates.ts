import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { cliActor as actor } from '../../../common/src/cli.ts';
import { toPem } from '../../../common/src/pki.ts';
import { normaliseSerial, PROFILE_NAMES } from '../../../common/src/vocabulary.ts';
import { parseReason } from '../crl.ts';
import { OnboardingInvalid, SerialUnknown } from '../errors.ts';
import { type CertRecord, statusOf } from '../inventory.ts';
import type { IssuedCertificate } from '../issuance.ts';
import { buildPkcs12, readPrivateKey } from '../p12.ts';
import { type CommandContext, collect, readInput } from './context.ts';

/**
 * The onboarding staff's certificate commands: `issue`, `renew`, `revoke`, `list`, `show`, `crl`
 * and `export-p12`. Each acts on the CA of the configured data directory.
 */
export function addCertificateCommands(program: Command, cli: CommandContext): void {
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
      cli.withCa(async (ca) => {
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
      cli.withCa(async (ca) => {
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
      cli.withCa(async (ca) => {
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
      cli.withRecords((inventory) => {
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
      cli.withRecords((inventory) => {
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
      cli.withCa(async (ca) => {
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
      cli.withCa(async (ca) => {
        const record = ca.show(o.serial);
        const password = readSecret(o.passwordFile, 'PACKTRUST_P12_PASSWORD', 'bundle password');
        const key = readPrivateKey(readInput(o.key, 'key'));
        if (!publicKeyOfRecord(record).equals(publicDer(key))) {
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
}

function parseReasonArg(value: string) {
  try {
    return parseReason(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
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

function publicDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

function publicKeyOfRecord(r: CertRecord): Buffer {
  return createPublicKey({ key: toPem(r.der, 'CERTIFICATE'), format: 'pem' }).export({ type: 'spki', format: 'der' });
}
