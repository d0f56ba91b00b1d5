import type { ApolloServerOptions, ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { Config } from '../config.js';

type Limits = Pick<ApolloServerOptions<BaseContext>, 'validationRules' | 'parseOptions'> & { plugins: ApolloServerPlugin[] };

/**
 * What one query may ask for, refused with HTTP 400 before any resolver runs:
 * - aliases, depth, directives and cost: graphql-armor's validation rules, GRAPHQL_VALIDATION_FAILED.
 *   armor's cost multiplies a connection by a literal `first`: one full page (`first: 1000`) of
 *   the costliest connection with every field (`winners`) is 66,313, so the default (100,000) lets
 *   one through and refuses two. Aliases (15) and `first` (at most 1000, read side) bound what a
 *   `first` given as a variable can ask for.
 * - tokens: graphql-js's own parser limit, GRAPHQL_PARSE_FAILED. The parse stops at the limit, so a
 *   long query costs no more than a short one. (armor's token plugin parses every document a second
 *   time and its refusal comes out of Apollo as a 500.)
 * - suggestions ("Did you mean …?") are cut in production by one mask for HTTP and the socket
 *   (masking.ts), not here: armor's masks field suggestions on HTTP only.
 * Apollo keeps each valid document parsed and validated, so the hot path's `enter` pays none of this
 * after its first call.
 */
export function queryLimits(config: Config): Limits {
  const armor = new ApolloArmor({
    // __typename counts too (armor lets it through by default): 20,000 of them cost 262 ms of CPU
    maxAliases: { n: config.GRAPHQL_MAX_ALIASES, allowList: [] },
    maxDepth: { n: config.GRAPHQL_MAX_DEPTH },
    maxDirectives: { n: config.GRAPHQL_MAX_DIRECTIVES },
    costLimit: { maxCost: config.GRAPHQL_MAX_COST },
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: false },
  }).protect();
  return {
    // armor's types name Apollo's CommonJS build, ours its ESM one: the same objects
    plugins: armor.plugins as unknown as ApolloServerPlugin[],
    validationRules: armor.validationRules,
    parseOptions: { maxTokens: config.GRAPHQL_MAX_TOKENS },
  };
}
