import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AUDIENCE_TEMPLATE } from '../../common/src/access-tokens.ts';
import { loadConfig } from '../../common/src/config.ts';
import { httpTimeoutsSchema } from '../../common/src/http.ts';
import { FMD_MARKETS, marketListSchema } from '../../common/src/markets.ts';
import { ConfigInvalid } from './errors.ts';

const port = z.coerce.number().int().min(0).max(65535);

/**
 * How long a call to the CA may take, connecting, sending and reading the whole answer together
 * (ms). Past it the CRL poll gives up and the gateway keeps the CRL it holds until the next poll:
 * a hung CA must hold neither the gateway's start nor its polls (which never overlap).
 */
export const DEFAULT_CA_DEADLINE_MS = 2000;

/** The gateway's configuration: file (`PACKTRUST_GATEWAY_CONFIG`), `PACKTRUST_GATEWAY_*`, flags. */
const gatewayConfigSchema = z.object({
  dataDir: z.string().min(1).default('./data/gateway'),
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(8443),
  /**
   * The markets this hub serves (ISO 3166-1 alpha-2; default the FMD markets, common/src/markets.ts).
   * Products, OAuth clients and verifier nodes may name only these; each has a feed.
   */
  markets: marketListSchema.default([...FMD_MARKETS]),
  /** The CA's public listener, where the gateway polls the CRL. */
  caUrl: z.url().default('http://127.0.0.1:7080'),
  /** The packtrust CA chain (issuing CA, then root), PEM: whom the gateway trusts. */
  caChainFile: z.string().min(1),
  /** The gateway's own certificate (gateway profile) and key, PEM. */
  tlsCertFile: z.string().min(1),
  tlsKeyFile: z.string().min(1),
  /**
   * The Ed25519 private key (PKCS#8 PEM) that signs the evidence log's checkpoints. Keep it out of
   * the data directory's backups of the store: whoever holds both could sign a rewritten log.
   * Default `<dataDir>/keys/evidence.key.pem`, where `npm start` makes one;
   * `packtrust-gateway evidence keygen` makes one elsewhere.
   */
  evidenceKeyFile: z.string().min(1).optional(),
  /**
   * The log's name in its checkpoints (C2SP checkpoint origin); default `<host of publicUrl>/packtrust-evidence`.
   * Never change it for a running log: checkpoints and the verifier key name it.
   */
  evidenceOrigin: z
    .string()
    .regex(/^[\x21-\x2a\x2c-\x7e]+$/, 'printable ASCII without spaces or +')
    .optional(),
  /** How often the CRL is polled (ms): a revocation is enforced within this plus one call to the CA. */
  crlPollMs: z.coerce.number().int().min(100).max(60_000).default(2000),
  /** Deadline of every call to the CA (DEFAULT_CA_DEADLINE_MS says what it covers). */
  caDeadlineMs: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_CA_DEADLINE_MS),
  signatureWindowSeconds: z.coerce.number().int().min(10).max(3600).default(300),
  randomisationPolicy: z.enum(['reject', 'warn']).default('reject'),
  randomisationMinSample: z.coerce.number().int().min(10).default(1000),
  maxBodyMb: z.coerce.number().int().min(1).max(512).default(64),
  /**
   * Whether packs of a batch whose expiry date has passed are registered; by default such an
   * upload is refused (`HUB_BATCH_EXPIRED`). `true` for loading the history of another system.
   */
  acceptExpiredBatches: z.union([z.boolean(), z.stringbool()]).default(false),
  /** Base URL clients use (the OAuth issuer is `<publicUrl>/oauth`); default https://host:port. */
  publicUrl: z.url().optional(),
  /** Passphrase that encrypts the token signing keys: a file, else PACKTRUST_GATEWAY_OAUTH_PASSPHRASE. */
  oauthPassphraseFile: z.string().optional(),
  /** Access token lifetime; nodes accept a token until it expires, also while the hub is down. */
  tokenTtlSeconds: z.coerce.number().int().min(60).max(86_400).default(600),
  /**
   * How long after its access token expired a pack event or alert queued at a node (hub
   * unreachable) is still accepted; the event time must lie inside the token's validity.
   */
  offlineWindowSeconds: z.coerce
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(86_400),
  /** The access tokens' audience per market: the verifier API of that market. */
  audienceTemplate: z.string().includes('{market}').default(AUDIENCE_TEMPLATE),
  tokenRatePerClient: z.coerce.number().positive().default(10),
  tokenBurstPerClient: z.coerce.number().int().min(1).default(20),
  tokenRatePerAddress: z.coerce.number().positive().default(100),
  tokenBurstPerAddress: z.coerce.number().int().min(1).default(200),
  /** How long a client may take (headers, whole request, idle): common/src/http.ts. */
  ...httpTimeoutsSchema.shape,
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

export function loadGatewayConfig(
  overrides: Record<string, unknown> = {},
  file = process.env.PACKTRUST_GATEWAY_CONFIG,
): GatewayConfig {
  return loadConfig(gatewayConfigSchema, { file, envPrefix: 'PACKTRUST_GATEWAY_', overrides });
}

/**
 * What the commands that work on the hub store alone (`client`, `evidence`, `keys`, `prefix`)
 * need: read from the same sources as `serve`, without the listener's certificate files.
 */
export type GatewayStoreConfig = Pick<
  GatewayConfig,
  | 'dataDir'
  | 'markets'
  | 'oauthPassphraseFile'
  | 'tokenTtlSeconds'
  | 'evidenceKeyFile'
  | 'evidenceOrigin'
  | 'publicUrl'
  | 'host'
  | 'port'
>;

export function loadGatewayStoreConfig(
  overrides: Record<string, unknown> = {},
  file = process.env.PACKTRUST_GATEWAY_CONFIG,
): GatewayStoreConfig {
  const keys = {
    dataDir: true,
    markets: true,
    oauthPassphraseFile: true,
    tokenTtlSeconds: true,
    evidenceKeyFile: true,
    evidenceOrigin: true,
    publicUrl: true,
    host: true,
    port: true,
  } as const;
  return loadConfig(gatewayConfigSchema.pick(keys), {
    file,
    envPrefix: 'PACKTRUST_GATEWAY_',
    overrides,
  });
}

export const OAUTH_PASSPHRASE_ENV = 'PACKTRUST_GATEWAY_OAUTH_PASSPHRASE';

/** The passphrase of the token signing keys, from the configured file or the environment. */
export function oauthPassphrase(config: Pick<GatewayConfig, 'oauthPassphraseFile'>): string {
  let value: string | undefined;
  if (config.oauthPassphraseFile) {
    try {
      value = readFileSync(config.oauthPassphraseFile, 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new ConfigInvalid(
        `Cannot read ${config.oauthPassphraseFile}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
  } else value = process.env[OAUTH_PASSPHRASE_ENV];
  if (!value || value.length < 12) {
    throw new ConfigInvalid(
      `Set oauthPassphraseFile or ${OAUTH_PASSPHRASE_ENV} (at least 12 characters): it encrypts the token signing keys`,
    );
  }
  return value;
}

/** The evidence key file: configured, or `<dataDir>/keys/evidence.key.pem`. */
export function evidenceKeyFile(config: Pick<GatewayConfig, 'evidenceKeyFile' | 'dataDir'>): string {
  return config.evidenceKeyFile ?? join(config.dataDir, 'keys', 'evidence.key.pem');
}

/** The evidence log's origin: configured, or `<host:port of the public URL>/packtrust-evidence`. */
export function evidenceOrigin(config: Pick<GatewayConfig, 'evidenceOrigin' | 'publicUrl' | 'host' | 'port'>): string {
  const publicUrl = config.publicUrl ?? `https://${config.host}:${config.port}`;
  return config.evidenceOrigin ?? `${new URL(publicUrl).host}/packtrust-evidence`;
}
