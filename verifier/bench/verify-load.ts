/**
 * Load generator in its own process: POSTs a JSON body with a Bearer token over keep-alive TLS
 * connections for a fixed time, optionally paced to a target rate; prints the latency summary.
 * Usage: tsx verify-load.ts URL BODY_FILE TOKEN CA_FILE CONNECTIONS SECONDS [RATE_PER_SECOND] [ACCEPT_SIGNATURE]
 * (a rate of 0 is unpaced; with ACCEPT_SIGNATURE, an answer counts only when it carries a signature).
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { latencySummary } from '../../common/src/bench.ts';

const [url, bodyFile, token, caFile, connectionsArg, secondsArg, rateArg, acceptSignature] = process.argv.slice(2);
const body = readFileSync(bodyFile!);
const connections = Number(connectionsArg);
const rate = rateArg ? Number(rateArg) : 0;
const dispatcher = new Agent({ connect: { ca: readFileSync(caFile!, 'utf8') }, connections, pipelining: 1 });
const headers = {
  'content-type': 'application/json',
  authorization: `Bearer ${token}`,
  ...(acceptSignature ? { 'accept-signature': acceptSignature } : {}),
};
const latencies: number[] = [];
let errors = 0;
const t0 = performance.now();
const deadline = t0 + Number(secondsArg) * 1000;
let sent = 0;

async function worker(): Promise<void> {
  while (performance.now() < deadline) {
    if (rate > 0) {
      // Open-loop pacing: request n is due at t0 + n / rate.
      const due = t0 + (sent++ / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const start = performance.now();
    try {
      const res = await request(url!, { method: 'POST', dispatcher, headers, body });
      const text = await res.body.text();
      // An answer counts only if it is the right one: the pack verifies as active.
      const signed = !acceptSignature || res.headers.signature !== undefined;
      if (res.statusCode === 200 && signed && text.includes('"returnCode":"ACTIVE"'))
        latencies.push(performance.now() - start);
      else errors++;
    } catch {
      errors++;
    }
  }
}

await Promise.all(Array.from({ length: connections }, worker));
console.log(JSON.stringify(latencySummary(latencies, errors, (performance.now() - t0) / 1000)));
await dispatcher.close();
