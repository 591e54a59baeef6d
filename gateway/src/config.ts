import { z } from 'zod';
import { loadConfig } from '../../common/src/config.ts';

const port = z.coerce.number().int().min(0).max(65535);

/** The gateway's configuration: file (`PACKTRUST_GATEWAY_CONFIG`), `PACKTRUST_GATEWAY_*`, flags. */
export const gatewayConfigSchema = z.object({
  dataDir: z.string().min(1).default('./data/gateway'),
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(8443),
  /** The CA's public listener, where the gateway polls the CRL. */
  caUrl: z.url().default('http://127.0.0.1:7080'),
  /** The packtrust CA chain (issuing CA, then root), PEM: whom the gateway trusts. */
  caChainFile: z.string().min(1),
  /** The gateway's own certificate (gateway profile) and key, PEM. */
  tlsCertFile: z.string().min(1),
  tlsKeyFile: z.string().min(1),
  crlPollMs: z.coerce.number().int().min(100).max(60_000).default(2000),
  signatureWindowSeconds: z.coerce.number().int().min(10).max(3600).default(300),
  randomisationPolicy: z.enum(['reject', 'warn']).default('reject'),
  randomisationMinSample: z.coerce.number().int().min(10).default(1000),
  maxBodyMb: z.coerce.number().int().min(1).max(512).default(64),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

export function loadGatewayConfig(
  overrides: Record<string, unknown> = {},
  file = process.env.PACKTRUST_GATEWAY_CONFIG,
): GatewayConfig {
  return loadConfig(gatewayConfigSchema, { file, envPrefix: 'PACKTRUST_GATEWAY_', overrides });
}
