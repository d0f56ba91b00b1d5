import { Pool } from 'undici';

/**
 * A crowd of users calling `enter` over HTTP with keep-alive connections: shared by the demo and
 * the benchmarks. Each call's latency is kept for percentiles.
 */
export interface CallResult<T> {
  ms: number;
  status: number;
  body: T;
}

/**
 * undici's Pool, one request per connection at a time. The crowd shares the server's two cores:
 * in the 200k demo Node's `http` client took 17–26% of a core during the fresh calls and 60–80%
 * after the sell-out, the pool 12–16% and 38–45% (docs/benchmarks.md).
 */
export function createClient(baseUrl: string, connections: number) {
  const pool = new Pool(new URL(baseUrl).origin, { connections, pipelining: 1 });
  const post = async <T>(token: string | null, query: string, variables?: Record<string, unknown>): Promise<CallResult<T>> => {
    const started = performance.now();
    const res = await pool.request({
      path: '/graphql',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.body.json()) as T;
    return { ms: performance.now() - started, status: res.statusCode, body };
  };
  return { post, close: () => void pool.destroy() };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The middle value (the upper one of an even count), of values in any order. */
export const median = (xs: readonly number[]): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

export async function runPool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** Prints a plain table: the first row is the header. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
