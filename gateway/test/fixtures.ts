import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningCaServer, startCaServer } from '../../ca/src/server.ts';
import { createTestCa, opensslCsr, P256, PASSPHRASE, type TestCa } from '../../ca/test/fixtures.ts';
import { generateClientKey, TokenClient } from '../../clients/token-client.ts';
import { UploadClient } from '../../clients/upload-client.ts';
import { type HttpServer, type HttpTimeouts, listen } from '../../common/src/http.ts';
import type { SignatureParameters } from '../../common/src/http-signatures/index.ts';
import { createLogger } from '../../common/src/log.ts';
import { FMD_MARKETS } from '../../common/src/markets.ts';
import type { Role } from '../../common/src/pack-rules.ts';
import { RequestSigner } from '../../common/src/signed-request.ts';
import { ClientIdentifier } from '../src/client-identity.ts';
import { DEFAULT_CA_DEADLINE_MS } from '../src/config.ts';
import { EvidenceNotary } from '../src/evidence-checkpoints.ts';
import { type EvidenceReport, loadTrustAnchors, verifyEvidence } from '../src/evidence-verification.ts';
import { HubStore, type StoredAlert } from '../src/hub-store.ts';
import { ClientRegistry } from '../src/oauth/clients.ts';
import { OAuthService } from '../src/oauth/provider.ts';
import { openSigningKeys, type SigningKeys } from '../src/oauth/signing-keys.ts';
import { PrefixRegistry } from '../src/prefixes.ts';
import { createGatewayServer } from '../src/server.ts';
import { CaTrust } from '../src/trust.ts';

export interface Credential {
  certPem: string;
  keyPem: string;
  serial: string;
  fingerprint: string;
  keyPath: string;
}

export interface Pharmacy {
  clientId: string;
  token(): Promise<string>;
}

export interface TestHub {
  t: TestCa;
  caServer: RunningCaServer;
  trust: CaTrust;
  store: HubStore;
  gateway: HttpServer;
  hubUrl: string;
  oauth: OAuthService;
  keys: SigningKeys;
  /** Signs the evidence log's checkpoints; the same key across restarts, as the gateway's key file. */
  notary: EvidenceNotary;
  dir: string;
  credential(profile: string, org: string, keyArgs?: string[], extra?: Record<string, unknown>): Promise<Credential>;
  client(c: Pick<Credential, 'certPem' | 'keyPem'>): UploadClient;
  /**
   * Registers an OAuth client as onboarding staff would (private_key_jwt, org `ORG-<location>`);
   * `token()` gets a fresh access token from the hub's provider.
   */
  pharmacy(market: string, location: string, role?: Role): Promise<Pharmacy>;
  /** Every alert the hub keeps for `owner` (`-`: of unknown products), with raisedBy, newest first within each market. */
  alertsOf(owner: string): StoredAlert[];
  /** Registers a GS1 company prefix for an organisation, as onboarding staff do before its first product. */
  registerPrefix(org: string, prefix: string): Promise<void>;
  /**
   * What node tests start from: ACME (prefix 9506000) registers `code` for `markets` and uploads
   * `count` random serials as batch B1, expiry 291200, through the real signed API; the serials.
   */
  seedProduct(code: string, markets: string[], count: number): Promise<string[]>;
  /**
   * `evidence verify` in-process: the log against the CA's chain and current CRL, the log key and
   * the store's newest checkpoint.
   */
  verifyEvidence(): Promise<EvidenceReport>;
  /**
   * Tells the gateway it is published at `url` from now on (configuration `publicUrl`), as for a
   * relay in front of it: signed writes' `@target-uri` is read with it. Default: `hubUrl`.
   */
  publishAt(url: string): void;
  /** Stops the gateway and starts a new one on the same data and port, as a process restart would. */
  restart(): Promise<void>;
  /** Stops the gateway (the hub is down) until `start()`; the CA keeps running. */
  stop(): Promise<void>;
  /** Starts the gateway again on the same data and port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A real CA (with its public listener for the CRL) and a real gateway on 127.0.0.1:0. */
export async function startTestHub(
  options: {
    perClient?: { ratePerSecond: number; burst: number };
    perAddress?: { ratePerSecond: number; burst: number };
    tokenTtlSeconds?: number;
    offlineWindowSeconds?: number;
    /** The markets the hub serves; default the FMD markets, as the gateway's configuration. */
    markets?: readonly string[];
    /** How long a client may take; default the configuration's defaults. */
    timeouts?: Partial<HttpTimeouts>;
  } = {},
): Promise<TestHub> {
  const tokenTtlSeconds = options.tokenTtlSeconds ?? 600;
  const logger = createLogger('gateway-test', 'silent');
  const t = await createTestCa();
  const caServer = await startCaServer(t.ca, {
    host: '127.0.0.1',
    publicPort: 0,
    adminPort: 0,
    passphrase: PASSPHRASE,
    crlRefreshMarginMinutes: 60,
    logger,
  });
  const trust = new CaTrust(t.ca.chainPem());
  await trust.startPolling(
    `${caServer.publicUrl}/crl`,
    { intervalMs: 200, deadlineMs: DEFAULT_CA_DEADLINE_MS },
    logger,
  );
  const dir = mkdtempSync(join(tmpdir(), 'packtrust-hub-'));
  const clients: UploadClient[] = [];
  const tokenClients: TokenClient[] = [];
  const credential = async (
    profile: string,
    org: string,
    keyArgs = P256,
    extra: Record<string, unknown> = {},
  ): Promise<Credential> => {
    const name = `${profile}-${org}-${randomBytes(3).toString('hex')}`;
    const { csr, keyPath } = opensslCsr(t.dir, name, keyArgs);
    const issued = await t.ca.issue({ csr, profile, org, ...extra }, 'test');
    return {
      certPem: issued.certificatePem + issued.chainPem,
      keyPem: readFileSync(keyPath, 'utf8'),
      serial: issued.record.serial,
      fingerprint: issued.record.fingerprint,
      keyPath,
    };
  };
  const gw = await credential('gateway', 'HUB', P256, { dns: ['localhost'], ip: ['127.0.0.1'] });
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const notary = new EvidenceNotary('127.0.0.1/packtrust-evidence', generateKeyPairSync('ed25519').privateKey);
  /** Where clients reach the gateway: its own address unless a test publishes it elsewhere. */
  let published: string | undefined;
  /** The gateway on a store directory: what a process start does (used again by restart). */
  const boot = async (port: number) => {
    let listening = 'https://127.0.0.1';
    const store = new HubStore(join(dir, 'hub'), options.markets ?? FMD_MARKETS);
    const keys = await openSigningKeys(
      store,
      'oauth key passphrase for tests',
      tokenTtlSeconds,
      options.markets ?? FMD_MARKETS,
    );
    const oauth = new OAuthService({
      issuer: 'https://127.0.0.1/oauth',
      markets: store.markets,
      audienceTemplate: 'urn:packtrust:verifier:{market}',
      tokenTtlSeconds,
      perClient: options.perClient ?? { ratePerSecond: 1000, burst: 1000 },
      perAddress: options.perAddress ?? { ratePerSecond: 1000, burst: 1000 },
      cookieKeys,
      keys,
      store: store.store,
      logger,
    });
    const gateway = createGatewayServer({
      store,
      identifier: new ClientIdentifier(trust),
      receiptSigner: { key: createPrivateKey(gw.keyPem), keyid: gw.fingerprint },
      notary,
      tls: { key: gw.keyPem, cert: gw.certPem, ca: t.ca.chainPem() },
      signatureWindowSeconds: 300,
      publicUrl: () => published ?? listening,
      randomisationPolicy: 'reject',
      acceptExpiredBatches: false,
      maxBodyBytes: 64 * 1024 * 1024,
      ...(options.timeouts ? { timeouts: options.timeouts } : {}),
      oauth,
      offlineWindowSeconds: options.offlineWindowSeconds ?? 86_400,
      logger,
    });
    const hubUrl = await listen(gateway, '127.0.0.1', port);
    listening = hubUrl;
    oauth.setIssuer(`${hubUrl}/oauth`);
    return { store, keys, oauth, gateway, hubUrl };
  };
  const booted = await boot(0);
  const { store, keys, oauth, gateway, hubUrl } = booted;
  const hub: TestHub = {
    t,
    caServer,
    trust,
    store,
    gateway,
    hubUrl,
    oauth,
    keys,
    notary,
    dir,
    credential,
    client(c) {
      const u = new UploadClient({ baseUrl: hubUrl, certPem: c.certPem, keyPem: c.keyPem, caPem: t.ca.chainPem() });
      clients.push(u);
      return u;
    },
    async pharmacy(market, location, role = 'pharmacy') {
      const { privateJwk, jwks } = await generateClientKey();
      const { clientId } = await new ClientRegistry(hub.store).add({
        market,
        role,
        location,
        org: `ORG-${location}`,
        jwks,
      });
      // A restarted hub keeps its port, so this issuer stays right.
      const tokens = new TokenClient({ issuer: hub.oauth.issuer, clientId, privateJwk, ca: t.ca.chainPem() });
      tokenClients.push(tokens);
      return { clientId, token: async () => (await tokens.token()).accessToken };
    },
    alertsOf(owner) {
      // Read as the markets' verification organisations do, with raisedBy, which the owner's view has not.
      const all: StoredAlert[] = [];
      for (const market of hub.store.markets) {
        let cursor: string | undefined;
        do {
          const page = hub.store.marketAlertsOf(market, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
          all.push(...page.alerts.filter((a) => (a.owner ?? '-') === owner));
          cursor = page.next;
        } while (cursor !== undefined);
      }
      return all;
    },
    publishAt(url) {
      published = url;
    },
    async registerPrefix(org, prefix) {
      await new PrefixRegistry(hub.store, 'test').add(org, prefix);
    },
    async seedProduct(code, markets, count) {
      await hub.registerPrefix('ACME', '9506000');
      const up = hub.client(await credential('manufacturer', 'ACME'));
      const product = await up.write('POST', '/v1/products', JSON.stringify(productJson(code, markets)));
      if (product.status !== 201) throw new Error(`product ${code}: ${product.status} ${product.body}`);
      const serials = randomSerials(count);
      const batch = await up.write('POST', `/v1/products/${code}/batches/B1/packs?expiry=291200`, serials.join('\n'), {
        contentType: 'text/plain',
      });
      if (batch.status !== 201) throw new Error(`batch B1 of ${code}: ${batch.status} ${batch.body}`);
      return serials;
    },
    async verifyEvidence() {
      const trust = await loadTrustAnchors(t.ca.chainPem(), [t.ca.currentCrl()]);
      const latest = hub.store.evidence.latestCheckpoint();
      return verifyEvidence(hub.store.evidence, {
        trust,
        logKey: notary.verifierKey,
        checkpoints: latest ? [{ source: 'store', note: latest.note }] : [],
      });
    },
    async restart() {
      await hub.stop();
      await hub.start();
    },
    async stop() {
      for (const c of clients.splice(0)) c.close();
      await hub.gateway.close();
      await hub.oauth.close();
      await hub.store.close();
    },
    async start() {
      Object.assign(hub, await boot(Number(new URL(hub.hubUrl).port)));
    },
    async close() {
      for (const c of clients) c.close();
      for (const c of tokenClients) await c.close();
      await hub.gateway.close();
      await hub.oauth.close();
      trust.stop();
      await caServer.close();
      await hub.store.close();
      await t.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return hub;
}

/**
 * The headers of a write signed as `UploadClient` signs it, for tests that send what a client
 * would not: a body or covered header changed after signing, a replay, stale parameters.
 */
export function signedHeaders(
  c: Pick<Credential, 'certPem' | 'keyPem'>,
  targetUri: string,
  body: Buffer,
  params: Partial<SignatureParameters> = {},
): Record<string, string> {
  return new RequestSigner(c.certPem, c.keyPem).sign('POST', targetUri, body, 'application/json', params).headers;
}

export const productJson = (productCode: string, markets = ['DE', 'FR']) => ({
  productCode,
  name: 'Examplix 10 mg film-coated tablets',
  commonName: 'examplamide',
  form: 'film-coated tablet',
  strength: '10 mg',
  packSize: 30,
  markets,
});

export const randomSerials = (n: number): string[] => {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789';
  const out = new Set<string>();
  while (out.size < n) out.add(Array.from(randomBytes(12), (b) => alphabet[b % alphabet.length]).join(''));
  return [...out];
};
