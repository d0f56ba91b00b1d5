import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A graphql-ws client of a test server, over a real WebSocket (the `ws` package: Node 20 has none). */
export interface LiveSocket {
  client: Client;
  /** resolves with the close code once the socket has closed */
  closed: Promise<number>;
  /** resolves once the server acknowledged connection_init */
  connected: Promise<void>;
  dispose(): Promise<void>;
}

export function liveSocket(port: number, auth: string | null, opts: { lazy?: boolean } = {}): LiveSocket {
  let onClosed!: (code: number) => void;
  let onConnected!: () => void;
  const closed = new Promise<number>((r) => (onClosed = r));
  const connected = new Promise<void>((r) => (onConnected = r));
  const client = createClient({
    url: `ws://127.0.0.1:${port}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: auth ? { authorization: `Bearer ${auth}` } : {},
    lazy: opts.lazy ?? false,
    retryAttempts: 0,
    // a rejected connect must be seen by the test, not end the process
    onNonLazyError: () => undefined,
    on: {
      connected: () => onConnected(),
      closed: (e) => onClosed((e as { code: number }).code),
    },
  });
  return { client, closed, connected, dispose: () => Promise.resolve(client.dispose()) };
}

export interface Stream<T> {
  values: T[];
  /** when each value arrived (ms) */
  times: number[];
  errors: { message: string; extensions?: { code?: string } }[];
  done: boolean;
  /** resolves with the values once one of them passes `ok` (rejects at the deadline) */
  until(ok: (v: T) => boolean, timeoutMs?: number): Promise<T[]>;
  /** resolves once the server answered with an error or completed */
  ended: Promise<void>;
  stop(): void;
}

/** Subscribes and collects every pushed value of the one root field. */
export function collect<T = any>(socket: LiveSocket, query: string, variables?: Record<string, unknown>): Stream<T> {
  const values: T[] = [];
  const times: number[] = [];
  const errors: Stream<T>['errors'] = [];
  const waiters = new Set<() => void>();
  let onEnd!: () => void;
  const ended = new Promise<void>((r) => (onEnd = r));
  const stream: Stream<T> = {
    values,
    times,
    errors,
    done: false,
    ended,
    until(ok, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (values.some(ok)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(values);
          } else if (stream.done) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`stream ended without the value (values ${JSON.stringify(values)}, errors ${JSON.stringify(errors)})`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no such value within ${timeoutMs} ms (values ${JSON.stringify(values)}, errors ${JSON.stringify(errors)})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => unsubscribe(),
  };
  const finish = () => {
    stream.done = true;
    onEnd();
    for (const w of [...waiters]) w();
  };
  const unsubscribe = socket.client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: (r) => {
        if (r.errors) errors.push(...(r.errors as Stream<T>['errors']));
        if (r.data) {
          values.push(Object.values(r.data)[0] as T);
          times.push(Date.now());
        }
        for (const w of [...waiters]) w();
      },
      error: (err) => {
        if (Array.isArray(err)) errors.push(...(err as Stream<T>['errors']));
        else if (err && typeof err === 'object' && 'code' in err)
          errors.push({ message: `socket closed ${(err as { code: number }).code}: ${(err as { reason?: string }).reason ?? ''}` });
        else errors.push({ message: String(err) });
        finish();
      },
      complete: finish,
    },
  );
  return stream;
}
