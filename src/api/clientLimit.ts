import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { Config } from '../config.js';

/** The client's address: the socket's, or from X-Forwarded-For through the hops TRUST_PROXY trusts. */
export function clientAddress(trust: Config['TRUST_PROXY']): (req: IncomingMessage) => string {
  if (trust === undefined) return (req) => req.socket.remoteAddress ?? 'unknown';
  // the same readings of `true` and a hop count as Express's `trust proxy`
  const trusted =
    trust === true ? () => true : typeof trust === 'number' ? (_addr: string, hop: number) => hop < trust : proxyaddr.compile(trust);
  return (req) => proxyaddr(req, trusted);
}
