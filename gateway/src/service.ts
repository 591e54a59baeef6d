import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listen } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { fromPem } from '../../common/src/pki.ts';
import { keyidOf } from '../../common/src/signed-request.ts';
import { ClientIdentifier } from './client-identity.ts';
import { evidenceKeyFile, evidenceOrigin, type GatewayConfig, oauthPassphrase } from './config.ts';
import { ConfigInvalid } from './errors.ts';
import { EvidenceNotary } from './evidence-checkpoints.ts';
import { HubStore } from './hub-store.ts';
import { OAUTH_PREFIX, OAuthService } from './oauth/provider.ts';
import { openSigningKeys } from './oauth/signing-keys.ts';
import { DEFAULT_RANDOMISATION_OPTIONS } from './randomisation.ts';
import { createGatewayServer } from './server.ts';
import { CaTrust } from './trust.ts';

export interface RunningGateway {
  url: string;
  oauth: OAuthService;
  store: HubStore;
  close(): Promise<void>;
}

/** Starts the gateway from its configuration: trust, CRL polling, hub store, HTTPS listener. */
export async function startGateway(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigInvalid(`Cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  const chainPem = read(config.caChainFile, 'CA chain');
  const certPem = read(config.tlsCertFile, 'gateway certificate');
  const keyPem = read(config.tlsKeyFile, 'gateway key');
  const leaf = fromPem(certPem, 'CERTIFICATE')[0];
  if (!leaf) throw new ConfigInvalid(`${config.tlsCertFile} holds no certificate`);
  const trust = new CaTrust(chainPem);
  await trust.startPolling(
    `${config.caUrl}/crl`,
    { intervalMs: config.crlPollMs, deadlineMs: config.caDeadlineMs },
    logger,
  );
  const store = new HubStore(join(config.dataDir, 'hub'), config.markets);
  const dormant = store.dormantMarkets();
  if (dormant.length > 0) {
    logger.warn(
      { markets: dormant },
      'the hub store holds feeds of markets that are not configured; they are kept but not served or appended to',
    );
  }
  const keys = await openSigningKeys(store, oauthPassphrase(config), config.tokenTtlSeconds, config.markets);
  let publicUrl = config.publicUrl ?? `https://${config.host}:${config.port}`;
  const notary = EvidenceNotary.fromFile(evidenceOrigin(config), evidenceKeyFile(config));
  const oauth = new OAuthService({
    issuer: `${publicUrl}${OAUTH_PREFIX}`,
    markets: store.markets,
    audienceTemplate: config.audienceTemplate,
    tokenTtlSeconds: config.tokenTtlSeconds,
    perClient: { ratePerSecond: config.tokenRatePerClient, burst: config.tokenBurstPerClient },
    perAddress: { ratePerSecond: config.tokenRatePerAddress, burst: config.tokenBurstPerAddress },
    cookieKeys: [randomBytes(32).toString('base64url')],
    keys,
    store: store.store,
    logger,
  });
  const app = createGatewayServer({
    store,
    identifier: new ClientIdentifier(trust),
    receiptSigner: {
      key: createPrivateKey(keyPem),
      keyid: keyidOf(new X509Certificate(leaf)),
    },
    notary,
    tls: { key: keyPem, cert: certPem, ca: chainPem },
    signatureWindowSeconds: config.signatureWindowSeconds,
    publicUrl: () => publicUrl,
    maxBodyBytes: config.maxBodyMb * 1024 * 1024,
    timeouts: config,
    randomisationPolicy: config.randomisationPolicy,
    acceptExpiredBatches: config.acceptExpiredBatches,
    randomisation: { ...DEFAULT_RANDOMISATION_OPTIONS, minSample: config.randomisationMinSample },
    oauth,
    offlineWindowSeconds: config.offlineWindowSeconds,
    logger,
  });
  let url: string;
  try {
    url = await listen(app, config.host, config.port);
    // Port 0 (tests): the public URL, and with it the issuer, follows the port actually bound.
    if (!config.publicUrl && config.port === 0) {
      publicUrl = url;
      oauth.setIssuer(`${url}${OAUTH_PREFIX}`);
    }
  } catch (err) {
    trust.stop();
    await oauth.close();
    await store.close();
    throw err;
  }
  return {
    url,
    oauth,
    store,
    async close() {
      trust.stop();
      await app.close();
      await oauth.close();
      await store.close();
    },
  };
}
