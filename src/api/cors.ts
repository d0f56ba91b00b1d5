import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';

/**
 * CORS for browser clients on the origins listed (none when unset: a preflight is answered without
 * any Access-Control-Allow-Origin, so the browser stops there). Tokens travel in a header, never in
 * cookies, so credentials stay off. Apollo's CSRF prevention stays on behind this: a simple
 * (preflight-free) cross-site request is still refused.
 */
export function corsFor(origins: readonly string[] | undefined) {
  const handle = cors({
    // an empty list allows no origin (`false` would mean '*' to the cors package)
    origin: [...(origins ?? [])],
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name'],
    exposedHeaders: ['retry-after'],
    maxAge: 600,
  });
  /** Sets the headers; true when it answered the request itself (a preflight). */
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    // not a browser's cross-origin request: nothing to say (and nothing to spend on the hot path)
    if (req.headers.origin === undefined) return false;
    let goOn = false;
    // with static options the cors package calls back synchronously
    handle(req, res, () => (goOn = true));
    return !goOn;
  };
}
