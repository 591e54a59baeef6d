import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { toPem } from '../../../common/src/pki.ts';
import { EvidenceUnknown } from '../errors.ts';
import { verifyEvidence } from '../evidence.ts';
import { type CommandContext, positiveInt } from './context.ts';

/** `packtrust-gateway evidence`: re-verify the evidence log, export one record for other tools. */
export function evidenceCommands(program: Command, { withStore }: CommandContext): void {
  const evidence = program.command('evidence').description('the evidence log of accepted writes');
  evidence
    .command('verify')
    .description('re-verify stored requests (body, digest, signature against the kept certificate) and the hash chain')
    .option('--from <seq>', 'first record', positiveInt, 1)
    .action((o) =>
      withStore((store) => {
        const result = verifyEvidence(store, o.from);
        if (result.ok) console.log(`evidence intact: ${result.checked} records re-verified, last ${result.lastSeq}`);
        else {
          console.error(`evidence BROKEN at record ${result.firstBroken.seq}: ${result.firstBroken.reason}`);
          process.exitCode = 3;
        }
      }),
    );
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
        writeFileSync(join(o.out, 'record.json'), `${JSON.stringify(entry, null, 2)}\n`);
        writeFileSync(
          join(o.out, 'README.txt'),
          [
            `Evidence record ${entry.seq} (hash ${entry.hash}, previous ${entry.prev}).`,
            'request.http      the request as received (headers in order, then the body)',
            'body.bin          the body; its SHA-256 is record.json body.bodySha256, its SHA-512 is in Content-Digest',
            'client-chain.pem  the client certificate chain presented in the TLS handshake',
            'record.json       the hash-chained record: hash = SHA-256(seq "\\n" prev "\\n" canonical JSON of body)',
            `The request signature "${r.signatureLabel}" (RFC 9421) verifies with the public key of the first certificate.`,
          ].join('\n'),
        );
        console.log(`wrote evidence record ${o.seq} to ${o.out}`);
      }),
    );
}
