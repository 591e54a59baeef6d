/**
 * `npm start`: the whole stack on 127.0.0.1 with its state under ./data. The first start creates
 * the PKI (CA passphrase generated into data/secrets/ unless PACKTRUST_CA_PASSPHRASE is set);
 * later starts reuse it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CertificateAuthority } from '../ca/src/authority.ts';
import { generateKeyAndCsr } from '../ca/src/keygen.ts';
import { loadConfig } from '../common/src/config.ts';
import { PacktrustError } from '../common/src/errors.ts';
import { Supervisor } from './supervisor.ts';

const port = z.coerce.number().int().min(1).max(65535);
const stackSchema = z.object({
  dataDir: z.string().default('./data'),
  host: z.string().default('127.0.0.1'),
  caPublicPort: port.default(7080),
  caAdminPort: port.default(7443),
  gatewayPort: port.default(8443),
  /** Verifier nodes listen from here: DE node 1, DE node 2, FR node 1. */
  verifierBasePort: port.default(9443),
});

/** The verifier nodes of the local stack: two for the first market, one for the second. */
const NODES = [
  { nodeId: 'de-1', market: 'DE' },
  { nodeId: 'de-2', market: 'DE' },
  { nodeId: 'fr-1', market: 'FR' },
] as const;
type StackConfig = z.output<typeof stackSchema>;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** A secret from the environment, else generated once into data/secrets/<name>. */
function localSecret(dataDir: string, name: string, envVar: string): { passphrase: string; file: string } {
  const file = join(dataDir, 'secrets', name);
  if (process.env[envVar]) return { passphrase: process.env[envVar], file: '' };
  if (!existsSync(file)) {
    mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  }
  return { passphrase: readFileSync(file, 'utf8').trim(), file };
}

async function bootstrapCa(config: StackConfig, caDir: string, passphrase: string): Promise<boolean> {
  if (existsSync(join(caDir, 'keys', 'issuing-ca.key.pem'))) return false;
  const { ca, operator } = await CertificateAuthority.init({
    dataDir: caDir,
    passphrase,
    keyAlgorithm: 'P-256',
    publicUrl: `http://${config.host}:${config.caPublicPort}`,
    caName: 'packtrust',
    crlValidityHours: 24,
    serverDns: ['localhost'],
    serverIp: [config.host],
    operator: { org: 'packtrust-operations', name: 'Onboarding operator' },
    actor: 'npm-start',
  });
  const out = join(caDir, 'operator');
  mkdirSync(out, { recursive: true, mode: 0o700 });
  writeFileSync(join(out, 'operator.key.pem'), operator.keyPem, { mode: 0o600 });
  writeFileSync(join(out, 'operator.pem'), operator.certificatePem + operator.chainPem);
  writeFileSync(join(caDir, 'chain.pem'), ca.chainPem());
  await ca.close();
  return true;
}

/** The gateway's TLS/receipt-signing certificate, issued once by the stack's CA. */
async function bootstrapGateway(
  config: StackConfig,
  caDir: string,
  gatewayDir: string,
  passphrase: string,
): Promise<boolean> {
  const keyFile = join(gatewayDir, 'keys', 'gateway.key.pem');
  if (existsSync(keyFile)) return false;
  const ca = await CertificateAuthority.open(caDir, passphrase);
  try {
    const { keyPem, csr } = await generateKeyAndCsr();
    const issued = await ca.issue(
      {
        csr,
        profile: 'gateway',
        org: 'packtrust-hub',
        name: 'packtrust hub gateway',
        dns: ['localhost'],
        ip: [config.host],
      },
      'npm-start',
    );
    mkdirSync(join(gatewayDir, 'keys'), { recursive: true, mode: 0o700 });
    writeFileSync(join(gatewayDir, 'keys', 'gateway.pem'), issued.certificatePem + issued.chainPem);
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
  } finally {
    await ca.close();
  }
  return true;
}

/** A verifier-node certificate for each node, issued once by the stack's CA. */
async function bootstrapNodes(
  config: StackConfig,
  caDir: string,
  verifierDir: string,
  passphrase: string,
): Promise<boolean> {
  const missing = NODES.filter((n) => !existsSync(join(verifierDir, n.nodeId, 'keys', 'node.key.pem')));
  if (missing.length === 0) return false;
  const ca = await CertificateAuthority.open(caDir, passphrase);
  try {
    for (const n of missing) {
      const { keyPem, csr } = await generateKeyAndCsr();
      const issued = await ca.issue(
        {
          csr,
          profile: 'verifier-node',
          org: `packtrust-${n.market.toLowerCase()}`,
          name: `verifier ${n.nodeId}`,
          market: n.market,
          dns: ['localhost'],
          ip: [config.host],
        },
        'npm-start',
      );
      const keys = join(verifierDir, n.nodeId, 'keys');
      mkdirSync(keys, { recursive: true, mode: 0o700 });
      writeFileSync(join(keys, 'node.pem'), issued.certificatePem + issued.chainPem);
      writeFileSync(join(keys, 'node.key.pem'), keyPem, { mode: 0o600 });
    }
  } finally {
    await ca.close();
  }
  return true;
}

async function main(): Promise<void> {
  const config = loadConfig(stackSchema, { envPrefix: 'PACKTRUST_' });
  const dataDir = resolve(config.dataDir);
  const caDir = join(dataDir, 'ca');
  const { passphrase, file } = localSecret(dataDir, 'ca-passphrase', 'PACKTRUST_CA_PASSPHRASE');
  const oauthSecret = localSecret(dataDir, 'gateway-oauth-passphrase', 'PACKTRUST_GATEWAY_OAUTH_PASSPHRASE');
  const started = performance.now();
  const gatewayDir = join(dataDir, 'gateway');
  const created = await bootstrapCa(config, caDir, passphrase);
  if (created) console.log(`[stack] created the PKI in ${caDir}`);
  if (await bootstrapGateway(config, caDir, gatewayDir, passphrase))
    console.log('[stack] issued the gateway certificate');
  const verifierDir = join(dataDir, 'verifier');
  if (await bootstrapNodes(config, caDir, verifierDir, passphrase))
    console.log('[stack] issued the verifier node certificates');

  const supervisor = new Supervisor((message) => {
    console.error(`[stack] ${message}; stopping the stack`);
    void supervisor.stop().then(() => process.exit(1));
  });
  const stop = () => {
    console.log('[stack] stopping');
    void supervisor.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const caEnv: NodeJS.ProcessEnv = {
    PACKTRUST_CA_DATA_DIR: caDir,
    PACKTRUST_CA_HOST: config.host,
    PACKTRUST_CA_PUBLIC_PORT: String(config.caPublicPort),
    PACKTRUST_CA_ADMIN_PORT: String(config.caAdminPort),
    ...(file ? { PACKTRUST_CA_PASSPHRASE_FILE: file } : {}),
  };
  const gatewayEnv: NodeJS.ProcessEnv = {
    PACKTRUST_GATEWAY_DATA_DIR: gatewayDir,
    PACKTRUST_GATEWAY_HOST: config.host,
    PACKTRUST_GATEWAY_PORT: String(config.gatewayPort),
    PACKTRUST_GATEWAY_CA_URL: `http://${config.host}:${config.caPublicPort}`,
    PACKTRUST_GATEWAY_CA_CHAIN_FILE: join(caDir, 'chain.pem'),
    PACKTRUST_GATEWAY_TLS_CERT_FILE: join(gatewayDir, 'keys', 'gateway.pem'),
    PACKTRUST_GATEWAY_TLS_KEY_FILE: join(gatewayDir, 'keys', 'gateway.key.pem'),
    ...(oauthSecret.file ? { PACKTRUST_GATEWAY_OAUTH_PASSPHRASE_FILE: oauthSecret.file } : {}),
  };
  try {
    await supervisor.start(
      { name: 'ca', command: TSX, args: [join(ROOT, 'ca/src/cli.ts'), 'serve'], env: caEnv, readyWhen: /CA listening/ },
      0,
    );
    await supervisor.start(
      {
        name: 'gateway',
        command: TSX,
        args: [join(ROOT, 'gateway/src/cli.ts'), 'serve'],
        env: gatewayEnv,
        readyWhen: /gateway listening/,
      },
      1,
    );
    for (const [i, n] of NODES.entries()) {
      const env: NodeJS.ProcessEnv = {
        PACKTRUST_VERIFIER_MARKET: n.market,
        PACKTRUST_VERIFIER_NODE_ID: n.nodeId,
        PACKTRUST_VERIFIER_HUB_URL: `https://${config.host}:${config.gatewayPort}`,
        PACKTRUST_VERIFIER_DATA_DIR: join(verifierDir, n.nodeId),
        PACKTRUST_VERIFIER_HOST: config.host,
        PACKTRUST_VERIFIER_PORT: String(config.verifierBasePort + i),
        PACKTRUST_VERIFIER_CERT_FILE: join(verifierDir, n.nodeId, 'keys', 'node.pem'),
        PACKTRUST_VERIFIER_KEY_FILE: join(verifierDir, n.nodeId, 'keys', 'node.key.pem'),
        PACKTRUST_VERIFIER_CA_CHAIN_FILE: join(caDir, 'chain.pem'),
      };
      await supervisor.start(
        {
          name: n.nodeId,
          command: TSX,
          args: [join(ROOT, 'verifier/src/cli.ts'), 'serve'],
          env,
          readyWhen: /verifier listening/,
        },
        2 + i,
      );
    }
  } catch (err) {
    console.error(`[stack] ${(err as Error).message}`);
    await supervisor.stop();
    process.exit(1);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`
[stack] packtrust is running (ready in ${seconds} s). Data: ${dataDir}
  CA public (certificates, CRL, OCSP)  http://${config.host}:${config.caPublicPort}
  CA admin API (mTLS, operator cert)   https://${config.host}:${config.caAdminPort}
  Hub gateway (mTLS, signed uploads)   https://${config.host}:${config.gatewayPort}
  OAuth for pharmacies (issuer)        https://${config.host}:${config.gatewayPort}/oauth
${NODES.map((n, i) => `  Verifier ${n.nodeId} (market ${n.market})        https://${config.host}:${config.verifierBasePort + i}`).join('\n')}
  Operator credentials                 ${join(caDir, 'operator')}/operator.{pem,key.pem}

Next: onboard a manufacturer (docs/onboarding.md), then upload (docs/manufacturer.md), for example
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout acme.key -out acme.csr -subj /CN=acme
  PACKTRUST_CA_PASSPHRASE_FILE=${file || '<your passphrase file>'} npm run ca -- --data-dir ${caDir} issue --csr acme.csr --profile manufacturer --org ACME --out acme.pem
Press Ctrl-C to stop.`);
}

main().catch((err: unknown) => {
  console.error(err instanceof PacktrustError ? `[stack] error [${err.code}]: ${err.message}` : err);
  process.exit(1);
});
