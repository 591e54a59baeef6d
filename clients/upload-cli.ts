import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runCli } from '../common/src/cli.ts';
import { BadRequest } from '../common/src/errors.ts';
import type { operations } from '../openapi/generated/hub.ts';
import { UploadClient, type UploadResponse } from './upload-client.ts';

/** The dry run's answer (openapi/hub.yaml `checkSerials`). */
type SerialCheck = operations['checkSerials']['responses']['200']['content']['application/json'];

interface Globals {
  hub: string;
  cert: string;
  key: string;
  ca: string;
  receipts: string;
  evidenceKey?: string;
}

/** `packtrust-upload`: a manufacturer's uploads to the hub, signed, with the receipts kept. */
export function createCli(): Command {
  const program = new Command('packtrust-upload')
    .description('upload product master data and pack serial numbers to the packtrust hub')
    .option('--hub <url>', 'hub gateway URL', process.env.PACKTRUST_HUB_URL ?? 'https://127.0.0.1:8443')
    .requiredOption('--cert <file>', 'your certificate (PEM, as the CA issued it)', process.env.PACKTRUST_UPLOAD_CERT)
    .requiredOption('--key <file>', 'your private key (PEM)', process.env.PACKTRUST_UPLOAD_KEY)
    .requiredOption('--ca <file>', 'the packtrust CA chain (PEM)', process.env.PACKTRUST_UPLOAD_CA)
    .option('--receipts <dir>', 'where signed receipts are kept', './receipts')
    .option(
      '--evidence-key <key>',
      "the hub's evidence log key as the operator published it: each receipt's checkpoint and inclusion proof are checked too",
      process.env.PACKTRUST_EVIDENCE_KEY,
    )
    .showHelpAfterError();

  const withClient = async (
    fn: (client: UploadClient) => Promise<UploadResponse>,
    show: (res: UploadResponse, receiptsDir: string) => void = report,
  ) => {
    const g = program.opts<Globals>();
    const read = (f: string, what: string) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        throw new BadRequest(`Cannot read the ${what} file ${f}`);
      }
    };
    const client = new UploadClient({
      baseUrl: g.hub,
      certPem: read(g.cert, 'certificate'),
      keyPem: read(g.key, 'key'),
      caPem: read(g.ca, 'CA chain'),
      ...(g.evidenceKey ? { evidenceKey: g.evidenceKey } : {}),
    });
    try {
      const res = await fn(client);
      show(res, g.receipts);
    } finally {
      client.close();
    }
  };

  program
    .command('product')
    .description(
      'register or update a product (JSON: productCode, name, commonName, form, strength, packSize, markets)',
    )
    .requiredOption('--file <file>', 'product JSON')
    .action((o) => withClient((c) => c.write('POST', '/v1/products', readFileSync(o.file))));

  program
    .command('packs')
    .description('upload the serial numbers of a batch (a text file, one serial per line; up to 1,000,000)')
    .requiredOption('--product <gtin>', 'product code (GTIN-14)')
    .requiredOption('--batch <id>', 'batch number')
    .requiredOption('--expiry <yymmdd>', 'expiry date on the pack, YYMMDD (DD=00: end of month)')
    .requiredOption('--file <file>', 'serial numbers, one per line')
    .action((o) =>
      withClient((c) =>
        c.write(
          'POST',
          `/v1/products/${encodeURIComponent(o.product)}/batches/${encodeURIComponent(o.batch)}/packs?expiry=${encodeURIComponent(o.expiry)}`,
          readFileSync(o.file),
          {
            contentType: 'text/plain',
          },
        ),
      ),
    );

  program
    .command('check-serials')
    .description(
      'dry run: the randomisation report the hub would give an upload of these serials, each finding explained; ' +
        'stores nothing (exits 1 when the hub would refuse the upload)',
    )
    .requiredOption('--product <gtin>', 'product code (GTIN-14) of one of your products')
    .requiredOption('--file <file>', 'serial numbers, one per line, as for packs')
    .action((o) =>
      withClient(
        (c) =>
          c.dryRun(`/v1/products/${encodeURIComponent(o.product)}/serials/check`, readFileSync(o.file), {
            contentType: 'text/plain',
          }),
        reportCheck,
      ),
    );

  for (const action of ['recall', 'withdraw'] as const) {
    program
      .command(`${action}-batch`)
      .description(`${action} a batch (irreversible)`)
      .requiredOption('--product <gtin>')
      .requiredOption('--batch <id>')
      .requiredOption('--reason <text>')
      .action((o) =>
        withClient((c) =>
          c.write(
            'POST',
            `/v1/products/${encodeURIComponent(o.product)}/batches/${encodeURIComponent(o.batch)}/${action}`,
            JSON.stringify({ reason: o.reason }),
          ),
        ),
      );
  }
  program
    .command('withdraw-product')
    .description('withdraw a product from all its markets (irreversible)')
    .requiredOption('--product <gtin>')
    .requiredOption('--reason <text>')
    .action((o) =>
      withClient((c) =>
        c.write('POST', `/v1/products/${encodeURIComponent(o.product)}/withdraw`, JSON.stringify({ reason: o.reason })),
      ),
    );
  return program;
}

function report(res: UploadResponse, receiptsDir: string): void {
  const body = res.body.toString('utf8');
  if (res.status >= 300) {
    console.error(`refused (${res.status}): ${body}`);
    process.exitCode = 1;
    return;
  }
  console.log(body);
  if (res.receipt) {
    const seq = (JSON.parse(body) as { evidence?: { seq?: number } }).evidence?.seq ?? 'unknown';
    mkdirSync(receiptsDir, { recursive: true });
    const file = join(receiptsDir, `receipt-${seq}-${new Date().toISOString().replaceAll(':', '')}.json`);
    writeFileSync(file, `${JSON.stringify(res.receipt, null, 2)}\n`);
    console.error(`receipt verified and kept in ${file}`);
  }
}

/** The report as JSON on stdout; on stderr the verdict and each finding in words, for a person. */
function reportCheck(res: UploadResponse): void {
  if (res.status >= 300) {
    console.error(`refused (${res.status}): ${res.body.toString('utf8')}`);
    process.exitCode = 1;
    return;
  }
  const body = res.json<SerialCheck>();
  console.log(JSON.stringify(body, null, 2));
  const { packs, productPacks, verdict, findings } = body.randomisation;
  const judged = productPacks > packs ? ` (judged with the product's ${productPacks - packs} registered serials)` : '';
  console.error(`${packs} serials${judged}: ${verdict}; nothing was stored`);
  for (const f of findings) console.error(`${f.severity.toUpperCase()} ${f.code}: ${f.detail}\n  ${f.explanation}`);
  if (body.uploadWouldBeRefused) {
    console.error('the hub would refuse an upload of these serials (HUB_RANDOMISATION_REJECTED)');
    process.exitCode = 1;
  }
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
