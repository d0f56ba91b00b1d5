import autocannon from 'autocannon';
import type { LoadGenerator, LoadPhase, LoadResult } from './generator.js';

/**
 * autocannon in the bench's own Node process: the fallback where wrk is not installed. It costs
 * 70-100 µs of CPU per request on this machine, about half of the server's `{ __typename }`, taken
 * from the cores the server runs on.
 */
/** `bodies`, one per token, stand for the phase's body. */
export function autocannonGenerator(tokens: string[], why: string, bodies?: string[]): LoadGenerator {
  return {
    describe: `autocannon, in the bench's process (${why})`,
    run: async ({ url, connections, duration, body }: LoadPhase): Promise<LoadResult> => {
      let i = 0;
      let graphqlErrors = 0;
      const cpu0 = process.cpuUsage();
      const result = await autocannon({
        url,
        connections,
        duration,
        requests: [
          {
            method: 'POST',
            path: '/graphql',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
            body,
            setupRequest: (req) => {
              const at = i++ % tokens.length;
              return {
                ...req,
                headers: { ...req.headers, authorization: `Bearer ${tokens[at]}` },
                ...(bodies ? { body: bodies[at] } : {}),
              };
            },
            onResponse: (status, resBody) => {
              // GraphQL errors (UNAVAILABLE, RATE_LIMITED, …) travel in 200 answers
              if (status === 200 && resBody.includes('"errors"')) graphqlErrors++;
            },
          },
        ],
      });
      const cpu = process.cpuUsage(cpu0);
      return {
        requests: result.requests.total,
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        errors: result.errors + result.non2xx + result.timeouts + graphqlErrors,
        reused: Math.max(0, i - tokens.length),
        cpuMs: (cpu.user + cpu.system) / 1000,
      };
    },
    close: () => undefined,
  };
}
