import { GraphQLError } from 'graphql';

/** One error type per kind, each with its GraphQL code (CONTRACT.md). */
export const unauthenticated = (message = 'a valid Bearer token is required') =>
  new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED' } });

export const forbidden = (message = 'admins only') => new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });

export const badInput = (field: string, message: string) =>
  new GraphQLError(`${field}: ${message}`, { extensions: { code: 'BAD_USER_INPUT', field } });

export const notFound = (what: string) => new GraphQLError(`${what} not found`, { extensions: { code: 'NOT_FOUND' } });

export const rateLimited = (retryAfterMs: number) =>
  new GraphQLError('too many requests', { extensions: { code: 'RATE_LIMITED', retryAfterMs } });

/**
 * Retryable: the projection is being rebuilt from the log (Redis was flushed). Never a wrong
 * answer in the meantime.
 */
export const unavailable = (retryAfterMs = 500) =>
  new GraphQLError('temporarily unavailable, retry shortly', { extensions: { code: 'UNAVAILABLE', retryAfterMs } });
