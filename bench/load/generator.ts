/**
 * A load generator drives one phase of `npm run bench`: `connections` keep-alive connections POST
 * one GraphQL body to /graphql for `duration` seconds, each request with the next of the run's
 * pre-signed user tokens (from the first, every phase).
 */
export interface LoadPhase {
  url: string;
  connections: number;
  duration: number;
  body: string;
}

/** What a phase measured, whichever program generated it. */
export interface LoadResult {
  /** answered requests */
  requests: number;
  rps: number;
  /** latency as answered, in ms */
  p50: number;
  p99: number;
  /** socket errors and timeouts, non-2xx answers, and GraphQL errors inside 200 answers */
  errors: number;
  /** requests that carried a token already sent in the phase: a fresh phase must have none */
  reused: number;
  /** CPU the generator spent sending the phase and reading its answers, in ms */
  cpuMs: number;
}

export interface LoadGenerator {
  /** for the bench's footer: which program ran, and how */
  describe: string;
  run(phase: LoadPhase): Promise<LoadResult>;
  close(): void;
}
