import { GraphQLError, type ValidationRule } from 'graphql';

/**
 * Over POST /graphql a subscription would be answered once with nulls (graphql-js executes it as a
 * query): it is refused there, naming where subscriptions are served.
 */
export const noSubscriptionOverHttp: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation === 'subscription') {
      context.reportError(
        new GraphQLError('subscriptions are served over WebSocket (graphql-transport-ws) at ws://<host>/graphql', { nodes: node }),
      );
    }
  },
});
