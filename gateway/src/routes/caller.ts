import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ClientIdentifier, ClientIdentity, ClientProfile } from '../client-identity.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who is calling, as its client certificate says: set once per request by the `onRequest`
     * hook of the route group (`identifyCallers`), before the body is read, and checked against
     * the profiles the group allows. Routes outside the groups (`/health`, `/oauth`) have none.
     */
    client: ClientIdentity;
  }
}

/**
 * Registers, in a route group (a fastify plugin, so the hook stays inside it), the `onRequest`
 * hook that works out who is calling: the certificate is checked on every request
 * (client-identity.ts), and `also` may refuse it for what the route names (a feed's market).
 */
export function identifyCallers(
  app: FastifyInstance,
  identifier: ClientIdentifier,
  profiles: readonly ClientProfile[],
  also?: (client: ClientIdentity, request: FastifyRequest) => void,
): void {
  app.decorateRequest('client', null as unknown as ClientIdentity);
  app.addHook('onRequest', async (request) => {
    const client = identifier.identify(request, profiles);
    also?.(client, request);
    request.client = client;
  });
}
