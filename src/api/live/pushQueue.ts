/**
 * An async iterator fed by pushes, for a subscription's source. Unlike an async generator, its
 * `return()` ends it at once even while it waits for the next value, so a dropped socket frees its
 * watch immediately (`onEnd`). Only the latest `max` values are kept for a slow reader.
 */
export class PushQueue<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void } | null = null;
  private failure: { err: unknown } | null = null;
  done = false;

  constructor(
    private readonly onEnd: () => void,
    private readonly max = 16,
  ) {}

  push(value: T): void {
    if (this.done || this.failure) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      return w.resolve({ value, done: false });
    }
    this.values.push(value);
    if (this.values.length > this.max) this.values.shift();
  }

  /** Ends the stream with an error, delivered after what is already queued. */
  fail(err: unknown): void {
    if (this.done || this.failure) return;
    this.failure = { err };
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      void this.return();
      w.reject(err);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.values.length > 0) return Promise.resolve({ value: this.values.shift()!, done: false });
    if (this.failure && !this.done) {
      void this.return();
      return Promise.reject(this.failure.err);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.done) {
      this.done = true;
      this.values.length = 0;
      this.onEnd();
      this.waiting?.resolve({ value: undefined, done: true });
      this.waiting = null;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
