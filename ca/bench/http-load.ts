/**
 * A load generator in its own process (so it does not share the server's event loop): POSTs one
 * request body over keep-alive connections for a fixed time and prints JSON with count, rate and latency percentiles.
 * Usage: tsx http-load.ts URL CONTENT_TYPE BODY_FILE CONCURRENCY SECONDS
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { latencySummary } from '../../common/src/bench.ts';

const [url, contentType, bodyFile, concurrencyArg, secondsArg] = process.argv.slice(2);
const body = readFileSync(bodyFile!);
const concurrency = Number(concurrencyArg);
const deadline = performance.now() + Number(secondsArg) * 1000;
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const latencies: number[] = [];
let errors = 0;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    const req = request(
      url!,
      { method: 'POST', agent, headers: { 'content-type': contentType!, 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - start);
          else errors++;
          resolve();
        });
      },
    );
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end(body);
  });
}

async function worker(): Promise<void> {
  while (performance.now() < deadline) await once();
}

const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
console.log(JSON.stringify(latencySummary(latencies, errors, (performance.now() - t0) / 1000)));
agent.destroy();
