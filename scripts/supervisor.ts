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

/** When a crashed service is started again, and when the supervisor gives up (scripts/stack.ts documents each). */
export interface RestartPolicy {
  /** The delay before the first restart; it doubles with each further crash within the window. */
  delayMs: number;
  /** The longest delay. */
  maxDelayMs: number;
  /** This many crashes of one service within the window stop the stack. */
  limit: number;
  windowMs: number;
}

interface Service {
  spec: ServiceSpec;
  prefix: string;
  child?: ChildProcess | undefined;
  /** When the service crashed, newest last; crashes older than the window are forgotten. */
  crashes: number[];
  /** The pending restart of a crashed service. */
  restart?: NodeJS.Timeout | undefined;
}

const COLOURS = [36, 35, 33, 32, 34, 31];

/**
 * Runs the stack's services as child processes, each line of their output prefixed with the
 * service's name. A service that exits on its own after it was ready is started again after a
 * back-off (`RestartPolicy`), and each crash and each return is logged loudly on stderr: nothing is
 * restarted silently. One that keeps crashing (`limit` crashes within the window) is reported to
 * `onFailure`, which stops the stack. A service that exits before it was first ready fails its
 * `start`. `stop()` ends them all with SIGTERM. What depends on a restarted service (nodes on the
 * hub, the hub on the CA) copes on its own: nothing else is restarted with it.
 */
export class Supervisor {
  private readonly services = new Map<string, Service>();
  private stopping = false;

  constructor(
    private readonly policy: RestartPolicy,
    private readonly onFailure: (message: string) => void,
  ) {}

  /** Starts a service; resolves when it prints its ready line, rejects if it exits first. */
  start(spec: ServiceSpec, index: number): Promise<void> {
    const prefix = process.stdout.isTTY
      ? `\x1b[${COLOURS[index % COLOURS.length]}m[${spec.name}]\x1b[0m `
      : `[${spec.name}] `;
    const service: Service = { spec, prefix, crashes: [] };
    this.services.set(spec.name, service);
    return this.run(service, false);
  }

  /** One process of `service`; resolves when it is ready, rejects if it exits before. */
  private run(service: Service, restarted: boolean): Promise<void> {
    const { spec, prefix } = service;
    const child = spawn(spec.command, spec.args, {
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    service.child = child;
    const began = performance.now();
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
      // Spawning itself failed (no exit follows): as an exit before ready.
      child.on('error', (err) => {
        if (service.child === child) service.child = undefined;
        if (!ready) reject(new Error(`${spec.name} could not start: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        if (service.child === child) service.child = undefined;
        if (this.stopping) return;
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        if (!ready) reject(new Error(`${spec.name} exited (${how}) before it was ready`));
        // At the first start the caller fails the start; once the service has served, it comes back.
        if (ready || restarted) this.crashed(service, how, performance.now() - began);
      });
    });
  }

  /** Counts the crash and schedules the restart, or reports a service that keeps crashing. */
  private crashed(service: Service, how: string, upMs: number): void {
    const { name } = service.spec;
    const { delayMs, maxDelayMs, limit, windowMs } = this.policy;
    const now = Date.now();
    service.crashes = [...service.crashes.filter((t) => now - t < windowMs), now];
    const crashes = service.crashes.length;
    const up = `${(upMs / 1000).toFixed(1)} s`;
    const window = `${windowMs / 1000} s`;
    if (crashes >= limit) {
      const again = crashes > 1 ? `: ${crashes} crashes within ${window}, it keeps crashing` : '';
      this.onFailure(`${name} crashed (${how}) after ${up}${again}`);
      return;
    }
    const delay = Math.min(maxDelayMs, delayMs * 2 ** (crashes - 1));
    loud(
      `${name} CRASHED (${how}) after ${up}; restart ${crashes} in ${delay / 1000} s ` +
        `(${limit} crashes within ${window} stop the stack)`,
    );
    service.restart = setTimeout(() => {
      service.restart = undefined;
      const began = performance.now();
      this.run(service, true).then(
        () => loud(`${name} is back: restart ${crashes} ready in ${((performance.now() - began) / 1000).toFixed(1)} s`),
        // Its exit has been counted as the next crash.
        () => undefined,
      );
    }, delay);
  }

  /** SIGTERM to every service; one that has not exited after `graceMs` is killed, and the log says so. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const started = performance.now();
    await Promise.all(
      [...this.services.values()].map((service) => {
        clearTimeout(service.restart);
        const { child } = service;
        const { name } = service.spec;
        if (!child) return undefined;
        return new Promise<void>((resolve) => {
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
        });
      }),
    );
  }
}

/** A line the operator must not miss: on stderr, red and bold in a terminal. */
function loud(message: string): void {
  console.error(process.stderr.isTTY ? `\x1b[1;31m[stack] ${message}\x1b[0m` : `[stack] ${message}`);
}
