import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { cliActor, runCli, stopOnSignals } from '../../common/src/cli.ts';
import { PacktrustError } from '../../common/src/errors.ts';
import { createLogger } from '../../common/src/log.ts';
import { ROLES } from '../../common/src/pack-rules.ts';
import { toPem } from '../../common/src/pki.ts';
import {
  type GatewayConfig,
  loadGatewayConfig,
  loadGatewayStoreConfig,
  OAUTH_PASSPHRASE_ENV,
  oauthPassphrase,
} from './config.ts';
import { verifyEvidence } from './evidence.ts';
import { HubStore } from './hub-store.ts';
import { ClientInvalid, ClientRegistry } from './oauth/clients.ts';
import { openSigningKeys } from './oauth/signing-keys.ts';
import { PrefixRegistry } from './prefixes.ts';

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

/** `packtrust-gateway`: run the hub's front door and inspect its evidence. */
export function createCli(): Command {
  const program = new Command('packtrust-gateway')
    .description('packtrust hub gateway: signed mTLS uploads, evidence, change feed')
    .option('--config <file>', 'configuration file (YAML or JSON); also PACKTRUST_GATEWAY_CONFIG')
    .option('--data-dir <dir>', 'gateway data directory (default ./data/gateway)')
    .showHelpAfterError();
  const config = (flags: Record<string, unknown> = {}): GatewayConfig => {
    const g = program.opts<{ config?: string; dataDir?: string }>();
    return loadGatewayConfig({ dataDir: g.dataDir, ...flags }, g.config);
  };
  const storeConfig = () => {
    const g = program.opts<{ config?: string; dataDir?: string }>();
    return loadGatewayStoreConfig({ dataDir: g.dataDir }, g.config);
  };
  const withStore = async (fn: (store: HubStore) => void | Promise<void>) => {
    const c = storeConfig();
    const store = new HubStore(join(c.dataDir, 'hub'), c.markets);
    try {
      await fn(store);
    } finally {
      await store.close();
    }
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
      const gateway = await startGateway(config({ host: o.host, port: o.port }), logger);
      logger.info({ url: gateway.url }, 'gateway listening');
      stopOnSignals(() => gateway.close());
    });

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
        const entry = store.evidence.db.get(o.seq);
        const body = store.evidenceBody(o.seq);
        if (!entry || !body)
          throw new PacktrustError(
            'HUB_EVIDENCE_UNKNOWN',
            404,
            'No such evidence record',
            `No evidence record ${o.seq}`,
          );
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
  const client = program.command('client').description('OAuth clients of pharmacies, hospitals and wholesalers');
  client
    .command('add')
    .description('register a client; prints its client_id (and secret)')
    .requiredOption('--market <XX>', 'the market (one the hub serves) whose verifier API the client calls')
    .addOption(new Option('--role <role>', 'what the client is').choices(ROLES).makeOptionMandatory())
    .requiredOption('--location <id>', 'location id (the pharmacy, the hospital ward, the warehouse)')
    .requiredOption('--org <id>', 'organisation id')
    .option('--jwks <file>', 'the client public keys (private_key_jwt, recommended)')
    .option('--secret', 'use a client secret instead of keys')
    .addOption(
      new Option('--secret-method <method>', 'how the secret is sent').choices(['basic', 'post']).default('basic'),
    )
    .action((o) =>
      withStore(async (store) => {
        let jwks: { keys: Record<string, unknown>[] } | undefined;
        if (o.jwks) {
          try {
            jwks = JSON.parse(readFileSync(o.jwks, 'utf8'));
          } catch {
            throw new ClientInvalid(`${o.jwks} is not a readable JWKS (JSON)`);
          }
        }
        const r = await new ClientRegistry(store).add({
          market: o.market,
          role: o.role,
          location: o.location,
          org: o.org,
          jwks,
          secret: o.secret === true,
          secretMethod: o.secretMethod,
        });
        console.log(JSON.stringify(r, null, 2));
        if (r.clientSecret) console.error('The secret is shown once; hand it over securely.');
      }),
    );
  client
    .command('list')
    .description('list clients')
    .action(() => withStore((store) => console.log(JSON.stringify(new ClientRegistry(store).list(), null, 2))));
  client
    .command('disable')
    .description(
      'disable a client: it gets no new token from now on (tokens already issued expire within their lifetime)',
    )
    .requiredOption('--client-id <id>')
    .action((o) =>
      withStore(async (store) => {
        await new ClientRegistry(store).disable(o.clientId);
        console.log(`disabled ${o.clientId}`);
      }),
    );
  client
    .command('rotate-secret')
    .description('give a secret client a new secret; the old one stops working at once')
    .requiredOption('--client-id <id>')
    .action((o) =>
      withStore(async (store) =>
        console.log(JSON.stringify({ clientSecret: await new ClientRegistry(store).rotateSecret(o.clientId) })),
      ),
    );

  const prefix = program
    .command('prefix')
    .description('GS1 company prefixes: an organisation registers only product codes under its own');
  const prefixes = (store: HubStore) => new PrefixRegistry(store, cliActor());
  prefix
    .command('add')
    .description('register a GS1 company prefix (4-12 digits, after the indicator digit) for an organisation')
    .argument('<org>', 'organisation id, as in its certificate')
    .argument('<prefix>', 'the company prefix, or a national agency range for NTINs')
    .action((org: string, digits: string) =>
      withStore(async (store) => {
        const r = await prefixes(store).add(org, digits);
        console.log(JSON.stringify(r.prefix, null, 2));
        if (!r.added) console.error(`Prefix ${digits} was already registered for ${org}; nothing changed.`);
      }),
    );
  prefix
    .command('list')
    .description('list registered prefixes')
    .option('--org <id>', "only this organisation's")
    .action((o) => withStore((store) => console.log(JSON.stringify(prefixes(store).list(o.org), null, 2))));
  prefix
    .command('move')
    .description(
      'give a prefix to another organisation with every product under it; verifier nodes learn the new owner',
    )
    .argument('<prefix>')
    .requiredOption('--to <org>', 'the organisation that owns it from now on')
    .action((digits: string, o) =>
      withStore(async (store) => console.log(JSON.stringify(await prefixes(store).move(digits, o.to), null, 2))),
    );
  prefix
    .command('remove')
    .description('remove a prefix under which no product is registered')
    .argument('<prefix>')
    .action((digits: string) =>
      withStore(async (store) => {
        const removed = await prefixes(store).remove(digits);
        console.log(`removed prefix ${removed.prefix} of ${removed.org}`);
      }),
    );
  const prefixAudit = prefix.command('audit').description("the registry's hash-chained audit log");
  prefixAudit
    .command('verify')
    .description('recompute the chain and report the first broken entry')
    .action(() =>
      withStore((store) => {
        const result = store.prefixAudit.verify();
        if (result.ok)
          console.log(`prefix audit log intact: ${result.checked} entries checked, last ${result.lastSeq}`);
        else {
          console.error(`prefix audit log BROKEN at entry ${result.firstBroken.seq}: ${result.firstBroken.reason}`);
          process.exitCode = 3;
        }
      }),
    );
  prefixAudit
    .command('list')
    .description('print entries: seq, time, actor, action, prefix, owner (from -> to for a move), products moved')
    .option('--from <seq>', 'first entry', positiveInt, 1)
    .option('--limit <n>', 'at most this many', positiveInt, 100)
    .action((o) =>
      withStore((store) => {
        let n = 0;
        for (const { seq, body: b } of store.prefixAudit.entries(o.from)) {
          const owner = b.from ? `${b.from} -> ${b.org}` : b.org;
          const moved = b.products === undefined ? '' : `\t${b.products} products`;
          console.log(`${seq}\t${b.time}\t${b.actor}\t${b.action}\t${b.prefix}\t${owner}${moved}`);
          if (++n >= o.limit) break;
        }
      }),
    );

  const keys = program.command('keys').description('the access-token signing keys');
  const signingKeys = (store: HubStore, file?: string) => {
    const c = storeConfig();
    return openSigningKeys(
      store,
      oauthPassphrase({ oauthPassphraseFile: file ?? c.oauthPassphraseFile }),
      c.tokenTtlSeconds,
      c.markets,
    );
  };
  keys
    .command('rotate')
    .description('make a new signing key; the old one stays published until its tokens expire')
    .option('--passphrase-file <file>', `the signing keys' passphrase (else ${OAUTH_PASSPHRASE_ENV})`)
    .action((o) =>
      withStore(async (store) =>
        console.log(`new signing key ${await (await signingKeys(store, o.passphraseFile)).rotate()}`),
      ),
    );
  keys
    .command('list')
    .description('list signing keys')
    .option('--passphrase-file <file>')
    .action((o) =>
      withStore(async (store) =>
        console.log(JSON.stringify((await signingKeys(store, o.passphraseFile)).list(), null, 2)),
      ),
    );
  return program;
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
