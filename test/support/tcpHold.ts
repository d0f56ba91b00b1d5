import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** One client's connection through the relay: what it sent (RESP as text), and what is held for it. */
interface Link {
  client: Socket;
  sent: string;
  held: Buffer[];
}

/**
 * A TCP relay to `target` whose answers can be held: while held, what the target sends is kept and
 * delivered, in order, on release, for every connection or for some of them. What clients send always
 * goes through, and is kept as text, so a test can see that a command was sent. For ordering tests
 * against a real server: a connection's replies and pushed messages arrive late, as on a slow
 * network, never reordered within the connection.
 */
export async function holdingRelay(target: { host: string; port: number }) {
  let holding = false;
  const links = new Set<Link>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const link: Link = { client, sent: '', held: [] };
    links.add(link);
    client.on('data', (d: Buffer) => {
      link.sent += d.toString('latin1');
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (holding || link.held.length > 0) link.held.push(d);
      else client.write(d);
    });
    const end = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    /** what each open connection has sent so far */
    sent: (): string[] => [...links].map((l) => l.sent),
    hold() {
      holding = true;
    },
    /** delivers what was held for the connections `which` picks by what they sent (all by default); holding goes on for the others */
    release(which: (sent: string) => boolean = () => true) {
      const all = [...links].every((l) => which(l.sent));
      if (all) holding = false;
      for (const l of links) if (which(l.sent)) for (const d of l.held.splice(0)) l.client.write(d);
    },
    async close() {
      for (const l of links) l.client.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
