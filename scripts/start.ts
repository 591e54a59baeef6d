/**
 * `npm start`: the whole stack on 127.0.0.1 with its state under ./data. The first start creates
 * the PKI (CA passphrase generated into data/secrets/ unless PACKTRUST_CA_PASSPHRASE is set);
 * later starts reuse it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '../ca/src/authority.ts';
import { loadCaConfig } from '../ca/src/config.ts';
import { generateKeyAndCsr } from '../clients/keygen.ts';
import { stopOnSignals } from '../common/src/cli.ts';
import { PacktrustError } from '../common/src/errors.ts';
import { evidenceKeyFile, evidenceOrigin } from '../gateway/src/config.ts';
import { EvidenceNotary } from '../gateway/src/evidence-checkpoints.ts';
import { loadStack, NODES, type Stack, type StackConfig } from './stack.ts';
import { Supervisor } from './supervisor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Each service runs as one Node process with tsx's loader (no wrapper process between signals). */
const TSX_LOADER = import.meta.resolve('tsx');
const service = (cli: string) => ['--import', TSX_LOADER, join(ROOT, cli), 'serve'];

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

async function bootstrapCa(stack: Stack, passphrase: string): Promise<boolean> {
  const { config, caDir } = stack;
  if (existsSync(join(caDir, 'keys', 'issuing-ca.key.pem'))) return false;
  // The CA's own defaults (and PACKTRUST_CA_* settings) for what the stack does not decide itself.
  const { keyAlgorithm, caName, crlValidityHours } = loadCaConfig({ dataDir: caDir });
  const { ca, operator } = await CertificateAuthority.init({
    dataDir: caDir,
    passphrase,
    keyAlgorithm,
    publicUrl: stack.urls.caPublic,
    caName,
    crlValidityHours,
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

/** The key that signs the evidence log's checkpoints, made once where the gateway looks by default (not in the store). */
function bootstrapEvidenceKey(gatewayDir: string): string {
  const file = evidenceKeyFile({ dataDir: gatewayDir });
  if (!existsSync(file)) EvidenceNotary.generateKeyFile(file);
  return file;
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
  const stack = loadStack();
  const { config, dataDir, caDir, gatewayDir, verifierDir } = stack;
  const { passphrase, file } = localSecret(dataDir, 'ca-passphrase', 'PACKTRUST_CA_PASSPHRASE');
  const oauthSecret = localSecret(dataDir, 'gateway-oauth-passphrase', 'PACKTRUST_GATEWAY_OAUTH_PASSPHRASE');
  const started = performance.now();
  const created = await bootstrapCa(stack, passphrase);
  if (created) console.log(`[stack] created the PKI in ${caDir}`);
  if (await bootstrapGateway(config, caDir, gatewayDir, passphrase))
    console.log('[stack] issued the gateway certificate');
  if (await bootstrapNodes(config, caDir, verifierDir, passphrase))
    console.log('[stack] issued the verifier node certificates');

  const restart = {
    delayMs: config.restartDelayMs,
    maxDelayMs: config.restartMaxDelayMs,
    limit: config.restartLimit,
    windowMs: config.restartWindowSeconds * 1000,
  };
  const supervisor = new Supervisor(restart, (message) => {
    console.error(`[stack] ${message}; stopping the stack`);
    void supervisor.stop().then(() => process.exit(1));
  });
  stopOnSignals(async () => {
    console.log('[stack] stopping');
    await supervisor.stop();
  });

  const caEnv: NodeJS.ProcessEnv = {
    PACKTRUST_CA_DATA_DIR: caDir,
    PACKTRUST_CA_HOST: config.host,
    PACKTRUST_CA_PUBLIC_PORT: String(config.caPublicPort),
    PACKTRUST_CA_ADMIN_PORT: String(config.caAdminPort),
    ...(file ? { PACKTRUST_CA_PASSPHRASE_FILE: file } : {}),
  };
  // The nodes witness the hub's evidence log with its key, handed to them here as an operator would.
  const evidenceLogKey = EvidenceNotary.fromFile(
    evidenceOrigin({ host: config.host, port: config.gatewayPort }),
    bootstrapEvidenceKey(gatewayDir),
  ).verifierKey;
  const gatewayEnv: NodeJS.ProcessEnv = {
    PACKTRUST_GATEWAY_DATA_DIR: gatewayDir,
    PACKTRUST_GATEWAY_HOST: config.host,
    PACKTRUST_GATEWAY_PORT: String(config.gatewayPort),
    PACKTRUST_GATEWAY_CA_URL: stack.urls.caPublic,
    PACKTRUST_GATEWAY_CA_CHAIN_FILE: stack.chainFile,
    PACKTRUST_GATEWAY_TLS_CERT_FILE: join(gatewayDir, 'keys', 'gateway.pem'),
    PACKTRUST_GATEWAY_TLS_KEY_FILE: join(gatewayDir, 'keys', 'gateway.key.pem'),
    ...(oauthSecret.file ? { PACKTRUST_GATEWAY_OAUTH_PASSPHRASE_FILE: oauthSecret.file } : {}),
  };
  try {
    await supervisor.start(
      { name: 'ca', command: process.execPath, args: service('ca/src/cli.ts'), env: caEnv, readyWhen: /CA listening/ },
      0,
    );
    await supervisor.start(
      {
        name: 'gateway',
        command: process.execPath,
        args: service('gateway/src/cli.ts'),
        env: gatewayEnv,
        readyWhen: /gateway listening/,
      },
      1,
    );
    // The nodes need the gateway, not one another: they start side by side.
    await Promise.all(
      NODES.map((n, i) => {
        const env: NodeJS.ProcessEnv = {
          PACKTRUST_VERIFIER_MARKET: n.market,
          PACKTRUST_VERIFIER_NODE_ID: n.nodeId,
          PACKTRUST_VERIFIER_HUB_URL: stack.urls.gateway,
          PACKTRUST_VERIFIER_DATA_DIR: join(verifierDir, n.nodeId),
          PACKTRUST_VERIFIER_HOST: config.host,
          PACKTRUST_VERIFIER_PORT: String(config.verifierBasePort + i),
          PACKTRUST_VERIFIER_CERT_FILE: join(verifierDir, n.nodeId, 'keys', 'node.pem'),
          PACKTRUST_VERIFIER_KEY_FILE: join(verifierDir, n.nodeId, 'keys', 'node.key.pem'),
          PACKTRUST_VERIFIER_CA_CHAIN_FILE: stack.chainFile,
          PACKTRUST_VERIFIER_EVIDENCE_LOG_KEY: evidenceLogKey,
        };
        return supervisor.start(
          {
            name: n.nodeId,
            command: process.execPath,
            args: service('verifier/src/cli.ts'),
            env,
            readyWhen: /verifier listening/,
          },
          2 + i,
        );
      }),
    );
  } catch (err) {
    console.error(`[stack] ${(err as Error).message}`);
    await supervisor.stop();
    process.exit(1);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const { urls } = stack;
  console.log(`
[stack] packtrust is running (ready in ${seconds} s). Data: ${dataDir}
  CA public (certificates, CRL, OCSP)  ${urls.caPublic}
  CA admin API (mTLS, operator cert)   ${urls.caAdmin}
  Hub gateway (mTLS, signed uploads)   ${urls.gateway}
  OAuth for pharmacies (issuer)        ${urls.oauthIssuer}
${urls.nodes.map((n) => `  Verifier ${n.nodeId} (market ${n.market})        ${n.url}`).join('\n')}
  Operator credentials                 ${stack.operatorCertFile}, ${stack.operatorKeyFile}

Next: run the end-to-end story in another terminal (same PACKTRUST_* settings):
  npm run demo
then onboard your own manufacturer (docs/onboarding.md), upload (docs/manufacturer.md) and
connect a pharmacy (docs/pharmacy.md).
Press Ctrl-C to stop.`);
}

main().catch((err: unknown) => {
  console.error(err instanceof PacktrustError ? `[stack] error [${err.code}]: ${err.message}` : err);
  process.exit(1);
});
