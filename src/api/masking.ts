import type { GraphQLFormattedError } from 'graphql';

/**
 * graphql-js ends many messages with its guesses (`Did you mean "myEntry"?`, `Did you mean the
 * enum value "REDIS"?`): field, argument, type, input-field and enum-value names that spell out the
 * schema introspection keeps hidden. In production they are cut, whichever path (HTTP or the
 * socket) and whichever phase (validation, variable coercion) wrote the message.
 */
export const hideSuggestions = (message: string): string => message.replace(/\s*Did you mean .*\?$/s, '');

export const maskedError = <E extends GraphQLFormattedError>(e: E): E =>
  /Did you mean/.test(e.message) ? { ...e, message: hideSuggestions(e.message) } : e;
