/**
 * What /readyz knows beyond "the servers answer": which component of which role is failing now, and
 * its last error. A component reports `failing(err)` when its work fails and `ok()` once it works
 * again; a component with parts (a consumer's partitions) is failing while any part is. Nothing here
 * retries or logs: components do that, this only remembers.
 */
export interface HealthReporter {
  failing(err: unknown, part?: string | number): void;
  ok(part?: string | number): void;
}

/** For a component nobody watches (tools, tests that build one directly). */
export const unwatched: HealthReporter = { failing: () => undefined, ok: () => undefined };

const WHOLE = '';

export class Health {
  /** component → part → its last error, one short line */
  private readonly failures = new Map<string, Map<string, string>>();

  /** `name` says the role and the component, e.g. `projector/prisma-tables`. */
  reporter(name: string): HealthReporter {
    return {
      failing: (err, part = WHOLE) => {
        const parts = this.failures.get(name) ?? new Map<string, string>();
        parts.delete(String(part)); // the latest error is shown
        parts.set(String(part), describeError(err));
        this.failures.set(name, parts);
      },
      ok: (part = WHOLE) => {
        const parts = this.failures.get(name);
        if (!parts?.delete(String(part))) return;
        if (parts.size === 0) this.failures.delete(name);
      },
    };
  }

  /** Components failing now, each with its latest error. Empty when all is well. */
  failing(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, parts] of this.failures) out[name] = [...parts.values()].at(-1)!;
    return out;
  }
}

/**
 * A reporter for a component in another thread: `send` is called only when something changes, so a
 * component may say `ok()` after every batch without a message per batch.
 */
export function forwardingReporter(send: (part: string, error: string | null) => void): HealthReporter {
  const failing = new Set<string>();
  return {
    failing: (err, part = WHOLE) => {
      failing.add(String(part));
      send(String(part), describeError(err));
    },
    ok: (part = WHOLE) => {
      if (failing.delete(String(part))) send(String(part), null);
    },
  };
}

const MAX_LINE = 200;

/**
 * An error as one short line without secrets, for /readyz and log keys. Prisma puts the call site
 * and a code frame before what went wrong, so the last line is the one that says it; credentials in
 * a URL or a `password=` are masked.
 */
export function describeError(err: unknown): string {
  let text: string;
  if (typeof err === 'string') text = err;
  else if (err instanceof Error) {
    text = err.message;
    // a connection refused on every address of a name (localhost: ::1 and 127.0.0.1) has no message of its own
    if (!text.trim() && err instanceof AggregateError && err.errors[0] instanceof Error) text = err.errors[0].message;
    if (!text.trim()) text = (err as { code?: string }).code ?? err.name;
  } else text = String(err);
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = (lines.at(-1) ?? 'unknown error')
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@')
    .replace(/(password\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1***');
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 1)}…` : line;
}
