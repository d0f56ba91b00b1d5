import { connect } from 'node:net';

/** What a raw exchange got: every status code the server wrote, the bytes, and whether it closed. */
export interface RawAnswer {
  statuses: number[];
  text: string;
  closed: boolean;
}

/**
 * Sends bytes as they are on a fresh TCP connection (no HTTP client to tidy them up) and reads
 * until the server closes or says nothing for `idleMs`: a truncated request is held open by the
 * server, waiting for the rest, and silence is its answer.
 */
export function rawExchange(port: number, bytes: string | Buffer, idleMs = 400): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const socket = connect(port, '127.0.0.1');
    const done = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ statuses: [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1])), text, closed });
    };
    socket.setTimeout(idleMs, () => socket.destroy());
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('end', () => (closed = true));
    socket.on('close', done);
    socket.write(bytes);
  });
}
