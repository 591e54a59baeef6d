/** A verifier node as deployed, `packtrust-verifier serve` in a process of its own, for the benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface NodeProcess {
  child: ChildProcess;
  /** The CA chain file it was given, for clients of the benchmark. */
  caFile: string;
  /** Resolves with the first match of `pattern` in the node's log (JSON lines on stdout). */
  waitForLog(pattern: RegExp): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

export function startNodeProcess(o: {
  dir: string;
  nodeId: string;
  dataDir: string;
  hubUrl: string;
  issuer: string;
  certPem: string;
  keyPem: string;
  caPem: string;
}): NodeProcess {
  const files = {
    cert: join(o.dir, `${o.nodeId}.pem`),
    key: join(o.dir, `${o.nodeId}.key`),
    ca: join(o.dir, 'chain.pem'),
  };
  writeFileSync(files.cert, o.certPem);
  writeFileSync(files.key, o.keyPem);
  writeFileSync(files.ca, o.caPem);
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), join(ROOT, 'verifier/src/cli.ts'), 'serve'],
    {
      env: {
        ...process.env,
        LOG_LEVEL: 'info',
        PACKTRUST_VERIFIER_MARKET: 'DE',
        PACKTRUST_VERIFIER_NODE_ID: o.nodeId,
        PACKTRUST_VERIFIER_HUB_URL: o.hubUrl,
        PACKTRUST_VERIFIER_ISSUER: o.issuer,
        PACKTRUST_VERIFIER_DATA_DIR: o.dataDir,
        PACKTRUST_VERIFIER_PORT: '0',
        PACKTRUST_VERIFIER_CERT_FILE: files.cert,
        PACKTRUST_VERIFIER_KEY_FILE: files.key,
        PACKTRUST_VERIFIER_CA_CHAIN_FILE: files.ca,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return {
    child,
    caFile: files.ca,
    waitForLog: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (!m) return;
          child.stdout!.off('data', check);
          child.off('exit', exited);
          resolve(m);
        };
        const exited = (code: number | null) => reject(new Error(`node exited ${code}: ${out.slice(-2000)}`));
        child.stdout!.on('data', check);
        child.once('exit', exited);
        check();
      }),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
