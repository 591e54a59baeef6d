import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** A line of the service's output that says it is ready. */
  readyWhen: RegExp;
}

const COLOURS = [36, 35, 33, 32, 34, 31];

/**
 * Runs the stack's services as child processes: each line of their output is prefixed with the
 * service's name; a service that dies stops the whole stack (nothing is restarted silently);
 * `stop()` ends them all with SIGTERM.
 */
export class Supervisor {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;

  constructor(private readonly onFailure: (message: string) => void) {}

  start(spec: ServiceSpec, index: number): Promise<void> {
    const child = spawn(spec.command, spec.args, {
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.set(spec.name, child);
    const tty = process.stdout.isTTY;
    const prefix = tty ? `\x1b[${COLOURS[index % COLOURS.length]}m[${spec.name}]\x1b[0m ` : `[${spec.name}] `;
    return new Promise((resolve, reject) => {
      let ready = false;
      const onLine = (line: string) => {
        process.stdout.write(`${prefix}${line}\n`);
        if (!ready && spec.readyWhen.test(line)) {
          ready = true;
          resolve();
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
      child.on('exit', (code, signal) => {
        this.children.delete(spec.name);
        if (this.stopping) return;
        const message = `${spec.name} exited (${signal ?? `code ${code}`})`;
        if (!ready) reject(new Error(message));
        else this.onFailure(message);
      });
    });
  }

  /** SIGTERM to every service; one that has not exited after `graceMs` is killed, and the log says so. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const started = performance.now();
    await Promise.all(
      [...this.children.entries()].map(
        ([name, child]) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              console.error(`[stack] ${name} did not stop within ${graceMs / 1000} s; killing it`);
              child.kill('SIGKILL');
            }, graceMs);
            child.once('exit', (code, signal) => {
              clearTimeout(timer);
              const took = ((performance.now() - started) / 1000).toFixed(1);
              console.log(`[stack] ${name} stopped (${signal ?? `exit ${code}`}, ${took} s)`);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
