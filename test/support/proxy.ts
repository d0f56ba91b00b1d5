import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A round-robin load balancer in front of API processes, as a deployment has one: each request
 * goes to the next backend, and to the one after it when a backend does not take the connection
 * (stopped for a deploy). No proxy package: node:http.
 */
export async function roundRobin(backends: () => number[]) {
  let next = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const forward = (port: number, req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
      const out = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const ports = backends();
    for (let tried = 0; tried < ports.length; tried++) {
      const port = ports[next++ % ports.length]!;
      try {
        const r = await forward(port, req, body);
        // a backend draining for a deploy says so: the next one answers instead
        if (r.status === 503 && ports.length > 1 && tried < ports.length - 1) continue;
        res.writeHead(r.status, r.headers);
        res.end(r.body);
        return;
      } catch {
        // not listening (stopped), or the connection cut: the next backend
      }
    }
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end('{"errors":[{"message":"no backend answered","extensions":{"code":"UNAVAILABLE"}}]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
