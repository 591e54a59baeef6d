import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { Agent, fetch } from 'undici';

export interface TokenClientOptions {
  /** The hub's OAuth issuer, e.g. `https://hub.example:8443/oauth`. */
  issuer: string;
  clientId: string;
  /** private_key_jwt: the private JWK made by {@link generateClientKey}. */
  privateJwk?: JWK;
  /** Or a client secret (client_secret_basic). */
  clientSecret?: string;
  /** The verifier API to ask for (default: the one of the client's market). */
  resource?: string;
  /** PEM trust anchors for the hub's TLS certificate, when it is not publicly trusted. */
  ca?: string;
  /** Renew this many seconds before expiry. */
  refreshMarginSeconds?: number;
}

export interface AccessToken {
  accessToken: string;
  expiresAt: number;
  scope?: string;
}

/** A pharmacy system's key pair: keep the private JWK, give the JWKS to onboarding staff. */
export async function generateClientKey(): Promise<{ privateJwk: JWK; jwks: { keys: JWK[] } }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' },
    jwks: { keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] },
  };
}

/** The token endpoint gave no answer: the connection or TLS failed (`code` is Node's, e.g. ECONNREFUSED). */
export class TokenEndpointUnreachable extends Error {
  readonly code: string | undefined;

  constructor(endpoint: string, err: unknown) {
    // undici's fetch says only "fetch failed"; what failed is its cause.
    const cause = ((err as { cause?: unknown }).cause ?? err) as Error & { code?: string };
    super(`Cannot reach the token endpoint ${endpoint}: ${cause.message ?? cause}`, { cause: err });
    this.code = cause.code;
  }
}

/** The token endpoint answered with an error (RFC 6749 §5.2). */
export class TokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description?: string,
  ) {
    super(`${error}${description ? `: ${description}` : ''}`);
  }
}

/**
 * Gets access tokens with the client credentials grant, authenticating with private_key_jwt
 * (a fresh signed assertion per request) or a client secret, and caches the token until shortly
 * before it expires.
 */
export class TokenClient {
  private cached: AccessToken | undefined;
  private pending: Promise<AccessToken> | undefined;
  private readonly dispatcher: Agent | undefined;

  constructor(private readonly options: TokenClientOptions) {
    if (!options.privateJwk === !options.clientSecret) throw new Error('Give either privateJwk or clientSecret');
    this.dispatcher = options.ca ? new Agent({ connect: { ca: options.ca } }) : undefined;
  }

  /** A valid token, from the cache when it has more than the margin left. */
  async token(): Promise<AccessToken> {
    const margin = (this.options.refreshMarginSeconds ?? 30) * 1000;
    if (this.cached && this.cached.expiresAt - margin > Date.now()) return this.cached;
    this.pending ??= this.request().finally(() => {
      this.pending = undefined;
    });
    this.cached = await this.pending;
    return this.cached;
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  private async request(): Promise<AccessToken> {
    const endpoint = `${this.options.issuer}/token`;
    const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'verify' });
    if (this.options.resource) body.set('resource', this.options.resource);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (this.options.privateJwk) {
      body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      body.set('client_assertion', await this.assertion(endpoint));
    } else {
      const basic = `${encodeURIComponent(this.options.clientId)}:${encodeURIComponent(this.options.clientSecret!)}`;
      headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
    }
    const res = await fetch(endpoint, {
      method: 'POST',
      headers,
      body: body.toString(),
      ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
    }).catch((err: unknown) => {
      throw new TokenEndpointUnreachable(endpoint, err);
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok)
      throw new TokenError(res.status, String(json.error ?? 'error'), json.error_description as string | undefined);
    return {
      accessToken: String(json.access_token),
      expiresAt: Date.now() + Number(json.expires_in) * 1000,
      ...(typeof json.scope === 'string' ? { scope: json.scope } : {}),
    };
  }

  private async assertion(audience: string): Promise<string> {
    const jwk = this.options.privateJwk!;
    const key = await importJWK(jwk, jwk.alg ?? 'ES256');
    return new SignJWT({})
      .setProtectedHeader({ alg: jwk.alg ?? 'ES256', ...(jwk.kid ? { kid: jwk.kid } : {}) })
      .setIssuer(this.options.clientId)
      .setSubject(this.options.clientId)
      .setAudience(audience)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(key);
  }
}
