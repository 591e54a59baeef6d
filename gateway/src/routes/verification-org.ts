import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { operations } from '../../../openapi/generated/hub.ts';
import { alertQueryOf } from '../alert-query.ts';
import type { ClientIdentifier, ClientIdentity } from '../client-identity.ts';
import { MarketNotYours } from '../errors.ts';
import type { HubStore } from '../hub-store.ts';
import { hubContract } from '../master-data.ts';
import { identifyCallers } from './caller.ts';

interface VerificationOrgRoutesOptions {
  store: HubStore;
  identifier: ClientIdentifier;
}

/** The contract's query of GET /v1/market-alerts, `limit` defaulted by the route schema. */
type MarketAlertsQuery = operations['getMarketAlerts']['parameters']['query'] & { limit: number };

/**
 * What a market's verification organisation reads (`verification-org` certificates of that
 * market only): the alerts raised in its market, with who raised them, for its investigations
 * (docs/domain.md §5, "Who raised an alert"). Owners read the same alerts without it
 * (routes/manufacturer.ts).
 */
export async function verificationOrgRoutes(app: FastifyInstance, o: VerificationOrgRoutesOptions): Promise<void> {
  const { store } = o;
  /** Before the query is read: the market asked for is the certificate's (a missing one is the schema's 400). */
  const readsItsMarket = (client: ClientIdentity, request: FastifyRequest): void => {
    const { market } = request.query as { market?: string };
    if (market !== undefined && market !== client.market) {
      throw new MarketNotYours(`This certificate is for market ${client.market ?? 'none'}, not ${market}`);
    }
  };
  identifyCallers(app, o.identifier, ['verification-org'], readsItsMarket);

  app.get<{ Querystring: MarketAlertsQuery }>(
    '/v1/market-alerts',
    { schema: hubContract.routeSchema('getMarketAlerts') },
    async (request) => {
      const { market, ...rest } = request.query;
      return store.marketAlertsOf(market, alertQueryOf(rest));
    },
  );
}
