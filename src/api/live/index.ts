import type { Server } from 'node:http';
import type { Config } from '../../config.js';
import { ChannelSubscriber, changesChannelOf, type RedisClient, type RedisOrdering } from '../../../projections/redis-ordering/index.js';
import type { createMetrics } from '../../metrics.js';
import { createAuthenticator } from '../auth.js';
import type { ApiServices } from '../resolvers.js';
import { ChangeHub } from './changeHub.js';
import { attachSubscriptions } from './wsServer.js';

/** Subscriptions for the API role: the process's hub (one Redis subscriber) and the WebSocket endpoint. */
export function startLive(
  server: Server,
  deps: { config: Config; services: ApiServices; redis: RedisClient; ordering: RedisOrdering; metrics: ReturnType<typeof createMetrics> },
) {
  const hub = new ChangeHub(ChannelSubscriber.of(deps.redis), (id) => changesChannelOf(deps.ordering, id));
  const auth = createAuthenticator(deps.config);
  const ws = attachSubscriptions(server, {
    config: deps.config,
    services: deps.services,
    hub,
    auth,
    edge: deps.metrics.edge,
    limits: deps.metrics.limits,
  });
  deps.metrics.gauge('firstcome_ws_sockets', 'open GraphQL WebSocket connections', () => ws.stats.sockets);
  deps.metrics.gauge('firstcome_ws_subscriptions', 'live subscriptions over WebSocket', () => ws.stats.subscriptions);
  deps.metrics.gauge('firstcome_live_channels', 'campaign change channels this process subscribes to in Redis', () => hub.size.channels);
  return {
    hub,
    ws,
    async close(): Promise<void> {
      await ws.close();
      auth.close();
      await hub.close();
    },
  };
}
