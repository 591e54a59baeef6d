import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, type InitOptions } from '../src/authority.ts';

export const PASSPHRASE = 'test passphrase of the CA';

export interface TestCa {
  ca: CertificateAuthority;
  dir: string;
  operatorKeyPem: string;
  operatorCertPem: string;
  /** Writes `content` into the test directory and returns its path. */
  file(name: string, content: string | Buffer): string;
  cleanup(): Promise<void>;
}

export async function createTestCa(overrides: Partial<InitOptions> = {}): Promise<TestCa> {
  const dir = mkdtempSync(join(tmpdir(), 'packtrust-ca-'));
  const { ca, operator } = await CertificateAuthority.init({
    dataDir: join(dir, 'ca'),
    passphrase: PASSPHRASE,
    keyAlgorithm: 'P-256',
    publicUrl: 'http://127.0.0.1:7080',
    caName: 'packtrust test',
    crlValidityHours: 24,
    serverDns: ['localhost'],
    serverIp: ['127.0.0.1'],
    operator: { org: 'NMVO-TEST', name: 'Test Operator' },
    actor: 'test',
    ...overrides,
  });
  return {
    ca,
    dir,
    operatorKeyPem: operator.keyPem,
    operatorCertPem: operator.certificatePem,
    file(name, content) {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    async cleanup() {
      await ca.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function openssl(args: string[], input?: string | Buffer): RunResult {
  const r = spawnSync('openssl', args, {
    input: input === undefined ? undefined : Buffer.from(input),
    timeout: 30_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A key and CSR made by `openssl req`, the way a manufacturer's staff would make them. */
export function opensslCsr(
  dir: string,
  name: string,
  keyArgs: string[],
  subject = '/CN=whatever-the-requester-claims/O=Evil',
): { csr: Buffer; keyPath: string; csrPath: string } {
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const r = openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', subject]);
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { csr: readFileSync(csrPath), keyPath, csrPath };
}

export const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTPS request with an optional client certificate (mutual TLS), trusting `ca`. */
export function httpsRequest(
  url: string,
  options: {
    method?: string;
    body?: unknown;
    key?: string;
    cert?: string;
    ca: string;
    agent?: import('node:https').Agent;
  },
): Promise<HttpResult> {
  return import('node:https').then(
    ({ request }) =>
      new Promise<HttpResult>((resolve, reject) => {
        const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
        const req = request(
          url,
          {
            method: options.method ?? 'GET',
            key: options.key,
            cert: options.cert,
            ca: options.ca,
            agent: options.agent ?? false,
            headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const body = Buffer.concat(chunks);
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body,
                json: () => JSON.parse(body.toString()),
              });
            });
          },
        );
        req.on('error', reject);
        req.end(payload);
      }),
  );
}

/** Runs a command without blocking the event loop (needed when it talks to a server in this process). */
export function run(command: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 30_000, encoding: 'buffer' }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ status, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}
