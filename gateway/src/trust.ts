import { createHash, X509Certificate } from 'node:crypto';
import type { Logger } from '../../common/src/log.ts';
import { bytes, fromPem, x509 } from '../../common/src/pki.ts';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import { CaChainInvalid, CrlRejected, CrlUnavailable, RevocationUnavailable } from './errors.ts';

/**
 * What the gateway trusts: the packtrust issuing CA (from the CA's chain) and its current CRL,
 * which is polled from the CA. Node's TLS resumes sessions without looking at the CRL again, so
 * the gateway checks revocation per request against this list, not at the handshake.
 */
export class CaTrust {
  readonly issuing: X509Certificate;
  readonly root: X509Certificate;
  readonly chainPem: string;
  private revoked = new Set<string>();
  private crlNumber = -1;
  private crlNextUpdate = 0;
  private crlDigest = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly stopper = new AbortController();

  constructor(chainPem: string) {
    const [issuing, root] = fromPem(chainPem, 'CERTIFICATE').map((der) => new X509Certificate(der));
    if (!issuing || !root) throw new CaChainInvalid('The CA chain must hold the issuing CA then the root CA');
    if (!issuing.verify(root.publicKey))
      throw new CaChainInvalid('The issuing CA in the chain is not signed by the root');
    this.issuing = issuing;
    this.root = root;
    this.chainPem = chainPem;
  }

  /** Accepts a CRL (DER) if the issuing CA signed it and it is newer than the one held. */
  async applyCrl(der: Buffer): Promise<boolean> {
    const digest = createHash('sha256').update(der).digest('hex');
    if (digest === this.crlDigest) return false;
    const crl = new x509.X509Crl(bytes(der));
    const publicKey = await crypto.subtle.importKey(
      'spki',
      this.issuing.publicKey.export({ type: 'spki', format: 'der' }),
      signatureKeyParams(this.issuing),
      true,
      ['verify'],
    );
    if (!(await crl.verify({ publicKey: publicKey as CryptoKey })))
      throw new CrlRejected('CRL signature does not verify');
    const numberExt = crl.extensions.find((e) => e.type === '2.5.29.20');
    const number = numberExt ? Number.parseInt(Buffer.from(numberExt.value).subarray(2).toString('hex'), 16) : 0;
    if (number < this.crlNumber) throw new CrlRejected(`CRL number ${number} is older than ${this.crlNumber}`);
    this.revoked = new Set(crl.entries.map((e) => normaliseSerial(e.serialNumber)).filter((s) => s !== undefined));
    this.crlNumber = number;
    this.crlNextUpdate = crl.nextUpdate?.getTime() ?? Number.POSITIVE_INFINITY;
    this.crlDigest = digest;
    return true;
  }

  /** The CRL held: its number (-1 before the first), revoked entries and nextUpdate. */
  crlStatus(): { number: number; revoked: number; nextUpdate: string | null } {
    return {
      number: this.crlNumber,
      revoked: this.revoked.size,
      nextUpdate: this.crlNumber < 0 ? null : new Date(this.crlNextUpdate).toISOString(),
    };
  }

  /** Whether a CRL is held and not past its nextUpdate: without one, no client certificate is accepted. */
  crlCurrent(): boolean {
    return this.crlNumber >= 0 && Date.now() <= this.crlNextUpdate;
  }

  /** Whether the held CRL lists the serial (any hex form); throws when no CRL is held or it is past its nextUpdate. */
  isRevoked(serialHex: string): boolean {
    if (!this.crlCurrent()) {
      throw new RevocationUnavailable('The gateway holds no current CRL from the CA');
    }
    const serial = normaliseSerial(serialHex);
    return serial !== undefined && this.revoked.has(serial);
  }

  /**
   * Polls `crlUrl` every `intervalMs`, one call at a time: the next starts `intervalMs` after the
   * previous one started, or as soon as it ended if it took longer. Each call, connecting, sending
   * and reading the whole CRL, has `deadlineMs`; past it the poll gives up and the CRL held stays.
   * A revocation is so enforced within `intervalMs` plus one call. Resolves after the first poll.
   */
  async startPolling(
    crlUrl: string,
    timing: { intervalMs: number; deadlineMs: number },
    logger: Logger,
  ): Promise<void> {
    const poll = async () => {
      const started = performance.now();
      try {
        if (await this.applyCrl(await this.fetchCrl(crlUrl, timing.deadlineMs))) {
          logger.info({ crlNumber: this.crlNumber, revoked: this.revoked.size }, 'CRL updated');
        }
      } catch (err) {
        logger.warn({ err, crlUrl, crlNumber: this.crlNumber }, 'CRL poll failed; the CRL held stays');
      }
      if (this.stopper.signal.aborted) return;
      this.timer = setTimeout(poll, Math.max(0, timing.intervalMs - (performance.now() - started)));
      this.timer.unref();
    };
    await poll();
  }

  /** The CRL's DER, whole within `deadlineMs` (or `stop()`), else CrlUnavailable. */
  private async fetchCrl(crlUrl: string, deadlineMs: number): Promise<Buffer> {
    const deadline = AbortSignal.timeout(deadlineMs);
    // The signal holds for the body too: a CA that stops half-way through the CRL is given up.
    const signal = AbortSignal.any([deadline, this.stopper.signal]);
    try {
      const res = await fetch(crlUrl, { signal });
      if (!res.ok) {
        await res.body?.cancel();
        throw new CrlUnavailable(`the CA answered HTTP ${res.status}`);
      }
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      if (err instanceof CrlUnavailable) throw err;
      if (deadline.aborted) throw new CrlUnavailable(`no whole answer from the CA within ${deadlineMs} ms`);
      // undici's fetch says only "fetch failed"; what failed is its cause.
      const cause = ((err as { cause?: unknown }).cause ?? err) as Error;
      throw new CrlUnavailable(`the CA is unreachable: ${cause.message}`, { cause: err });
    }
  }

  /** Ends the polling, and a call to the CA in flight. */
  stop(): void {
    this.stopper.abort();
    clearTimeout(this.timer);
  }
}

function signatureKeyParams(cert: X509Certificate): EcKeyImportParams | RsaHashedImportParams {
  const key = cert.publicKey;
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
    return { name: 'ECDSA', namedCurve: curve };
  }
  return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}
