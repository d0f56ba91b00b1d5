/** How the projector tells the database's answers apart: a data error is parked, a duplicate retried with the lookup. */

export const UNIQUE_VIOLATION = '23505';

/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation): retrying as is cannot help. */
export function sqlStateOf(err: unknown): string | null {
  const e = err as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } }; code?: unknown };
  const code = e?.meta?.driverAdapterError?.cause?.originalCode ?? e?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/** The database's own message, without Prisma's invocation text. */
export function errorLine(err: unknown): string {
  const cause = (err as { meta?: { driverAdapterError?: { cause?: { originalMessage?: unknown } } } })?.meta?.driverAdapterError?.cause;
  const state = sqlStateOf(err);
  const message = typeof cause?.originalMessage === 'string' ? cause.originalMessage : (err as Error).message;
  return state ? `${state}: ${message}` : message;
}

export function isDataError(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state !== null && (state.startsWith('22') || state.startsWith('23'));
}

export const isUniqueViolation = (err: unknown) =>
  sqlStateOf(err) === UNIQUE_VIOLATION || sqlStateOf((err as { cause?: unknown })?.cause) === UNIQUE_VIOLATION;
