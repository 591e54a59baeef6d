import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { ConfigInvalid, type PacktrustError } from '../src/errors.ts';

const schema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  tls: z.object({ cert: z.string(), key: z.string() }).optional(),
  market: z.string().regex(/^[A-Z]{2}$/),
});

describe('loadConfig', () => {
  it('layers defaults < file < environment < overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'port: 9000\nmarket: FR\ntls:\n  cert: a.pem\n  key: a.key\n');
    const env = { X_PORT: '9100', X_TLS__KEY: 'b.key' };
    expect(loadConfig(schema, { file, envPrefix: 'X_', env })).toEqual({
      host: '127.0.0.1',
      port: 9100,
      market: 'FR',
      tls: { cert: 'a.pem', key: 'b.key' },
    });
    expect(loadConfig(schema, { file, envPrefix: 'X_', env, overrides: { port: 1, host: undefined } }).port).toBe(1);
  });

  it('lists every problem at once', () => {
    try {
      loadConfig(schema, { envPrefix: 'X_', env: { X_PORT: '70000', X_MARKET: 'germany' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigInvalid);
      const problems = (err as PacktrustError).extensions.problems as string[];
      expect(problems).toHaveLength(2);
      expect(problems.join('\n')).toMatch(/port/);
      expect(problems.join('\n')).toMatch(/market/);
    }
  });

  it('names a configuration file it cannot read', () => {
    expect(() => loadConfig(schema, { file: '/nonexistent/packtrust.yaml' })).toThrow(/Cannot read configuration file/);
  });
});
