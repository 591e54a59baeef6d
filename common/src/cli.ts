import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { PacktrustError } from './errors.ts';

/** Who runs a command, as the audit logs record it. */
export const cliActor = (): string => `cli:${userInfo().username}@${hostname()}`;

/**
 * Runs a command-line tool: a PacktrustError ends with `error [CODE]: message` and exit status 1
 * (bad input) or 2 (a fault of the system); anything else with status 2.
 */
export async function runCli(program: Command, argv = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof PacktrustError) {
      console.error(`error [${err.code}]: ${err.message}`);
      process.exitCode = err.status >= 500 ? 2 : 1;
    } else {
      console.error(`error: ${(err as Error).message ?? err}`);
      process.exitCode = 2;
    }
    // A half-started service may hold listeners open; a failed command must still end.
    process.exit(process.exitCode);
  }
}

/**
 * Stops a service on SIGINT or SIGTERM: `close` runs once (Ctrl-C in a terminal reaches both the
 * stack and the service, so both signals may come), then the process exits 0, or 2 if closing failed.
 */
export function stopOnSignals(close: () => Promise<void>): void {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`error while stopping: ${(err as Error).message ?? err}`);
        process.exit(2);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
