import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { toPem } from '../../../common/src/pki.ts';
import { evidenceKeyFile, evidenceOrigin } from '../config.ts';
import { EvidenceUnknown } from '../errors.ts';
import { leafData } from '../evidence.ts';
import { EvidenceNotary } from '../evidence-checkpoints.ts';
import {
  exitCodeOf,
  loadTrustAnchors,
  type ReceiptInput,
  receiptInput,
  verifyEvidence,
} from '../evidence-verification.ts';
import { type CommandContext, positiveInt } from './context.ts';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `packtrust-gateway evidence`: re-verify the evidence log, export one record for other tools. */
export function evidenceCommands(program: Command, context: CommandContext): void {
  const { withStore } = context;
  const evidence = program.command('evidence').description('the evidence log of accepted writes');
  evidence
    .command('verify')
    .description(
      'verify the log against the CA and signed checkpoints: the Merkle tree recomputed from the records, ' +
        'every request signature and client certificate (exit codes: docs/operations.md, "Evidence")',
    )
    .requiredOption('--ca-chain <file>', 'the packtrust CA chain (issuing CA, then root), PEM')
    .option(
      '--crl <file>',
      "the issuing CA's CRL (DER or PEM; repeatable): revocations are checked at each record's time",
      collect,
      [],
    )
    .option(
      '--log-key <key>',
      "the checkpoints' note verifier key, or a file holding it (from the operator, out of band); default: that of the configured evidence key",
    )
    .option(
      '--checkpoint <file>',
      'a signed checkpoint to hold the log to (repeatable), e.g. from a verifier node',
      collect,
      [],
    )
    .option(
      '--receipts <path>',
      'a receipt file or a directory of receipts (packtrust-upload --receipts; repeatable)',
      collect,
      [],
    )
    .action(async (o) => {
      const trust = await loadTrustAnchors(
        readFileSync(o.caChain, 'utf8'),
        (o.crl as string[]).map((f) => readFileSync(f)),
      );
      const logKey = o.logKey ? readKey(o.logKey) : configuredNotary(context).verifierKey;
      await withStore((store) => {
        const latest = store.evidence.latestCheckpoint();
        const checkpoints = [
          ...(latest ? [{ source: `the store's checkpoint of ${latest.size} records`, note: latest.note }] : []),
          ...(o.checkpoint as string[]).map((f) => ({ source: f, note: readFileSync(f, 'utf8') })),
        ];
        const receipts = (o.receipts as string[]).flatMap(readReceipts);
        const report = verifyEvidence(store.evidence, { trust, logKey, checkpoints, receipts });
        if (report.afterCrl > 0) {
          console.error(
            `${report.afterCrl} records are past the nextUpdate of the CRLs given (or no --crl was given): revocations then are not checked`,
          );
        }
        const summary = `${report.records} records, ${report.anchored} under a signed checkpoint; ${report.checkpoints} checkpoints and ${report.receipts} receipts checked`;
        if (report.ok) console.log(`evidence intact: ${summary}`);
        else {
          for (const f of report.findings) console.error(`${f.code}${f.seq ? ` (record ${f.seq})` : ''}: ${f.detail}`);
          if (report.moreFindings > 0) console.error(`… and ${report.moreFindings} more findings`);
          console.error(`evidence BROKEN: ${summary}`);
          process.exitCode = exitCodeOf(report);
        }
      });
    });
  evidence
    .command('keygen')
    .description(
      "make the Ed25519 key that signs the log's checkpoints (the gateway's evidenceKeyFile) and print its verifier key",
    )
    .requiredOption('--out <file>', 'where to write the private key (PKCS#8 PEM, mode 0600); never overwritten')
    .requiredOption(
      '--origin <origin>',
      "the log's name in its checkpoints (the gateway's evidenceOrigin, e.g. hub.example.eu/packtrust-evidence)",
    )
    .action((o) => {
      EvidenceNotary.generateKeyFile(o.out);
      console.log(EvidenceNotary.fromFile(o.origin, o.out).verifierKey);
    });
  evidence
    .command('key')
    .description("print the note verifier key of the log's checkpoints, to hand to auditors and verifier nodes")
    .action(() => console.log(configuredNotary(context).verifierKey));
  evidence
    .command('export')
    .description('write one evidence record with everything needed to re-verify it with other tools')
    .requiredOption('--seq <seq>', 'record number', positiveInt)
    .requiredOption('--out <dir>', 'output directory')
    .action((o) =>
      withStore((store) => {
        const entry = store.evidence.record(o.seq);
        const body = store.evidence.body(o.seq);
        if (!entry || !body) throw new EvidenceUnknown(`No evidence record ${o.seq}`);
        mkdirSync(o.out, { recursive: true });
        const r = entry.body;
        const path = new URL(r.targetUri);
        const head = [
          `${r.method} ${path.pathname}${path.search} HTTP/1.1`,
          ...r.headers.map(([k, v]) => `${k}: ${v}`),
        ].join('\r\n');
        writeFileSync(join(o.out, 'request.http'), Buffer.concat([Buffer.from(`${head}\r\n\r\n`), body]));
        writeFileSync(join(o.out, 'body.bin'), body);
        writeFileSync(
          join(o.out, 'client-chain.pem'),
          r.clientCertificates.map((c) => toPem(Buffer.from(c, 'base64'), 'CERTIFICATE')).join(''),
        );
        writeFileSync(join(o.out, 'record.json'), `${JSON.stringify({ seq: entry.seq, body: entry.body }, null, 2)}\n`);
        writeFileSync(join(o.out, 'leaf.bin'), leafData(entry));
        writeFileSync(
          join(o.out, 'README.txt'),
          [
            `Evidence record ${entry.seq}, leaf ${entry.seq - 1} of the log's Merkle tree (RFC 9162).`,
            'request.http      the request as received (headers in order, then the body)',
            'body.bin          the body; its SHA-256 is record.json body.bodySha256, its SHA-512 is in Content-Digest',
            'client-chain.pem  the client certificate chain presented in the TLS handshake',
            'record.json       the record, readable',
            'leaf.bin          the record as the log hashes it: canonical JSON of {"body", "seq"} (keys sorted, no spaces);',
            '                  its leaf hash is SHA-256(0x00 || leaf.bin) (RFC 9162 2.1.1); a receipt of this record proves it:',
            '                  python3 scripts/verify-receipt.py RECEIPT.json VERIFIER_KEY --leaf leaf.bin',
            `The request signature "${r.signatureLabel}" (RFC 9421) verifies with the public key of the first certificate.`,
          ].join('\n'),
        );
        console.log(`wrote evidence record ${o.seq} to ${o.out}`);
      }),
    );
}

/** The notary of the configured evidence key (the gateway's `evidenceKeyFile` and `evidenceOrigin`). */
function configuredNotary(context: CommandContext): EvidenceNotary {
  const config = context.storeConfig();
  return EvidenceNotary.fromFile(evidenceOrigin(config), evidenceKeyFile(config));
}

/** A verifier key given on the command line, or the first line of the file it names. */
function readKey(value: string): string {
  try {
    if (statSync(value).isFile()) return readFileSync(value, 'utf8').split(/\r?\n/)[0]!.trim();
  } catch {
    // Not a file: the key itself.
  }
  return value;
}

/** The receipts in a file or directory (`*.json`). */
function readReceipts(path: string): ReceiptInput[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(path, f))
    : [path];
  return files.map((f) => receiptInput(f, readFileSync(f, 'utf8')));
}
