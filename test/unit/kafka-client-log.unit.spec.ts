import { createRequire } from 'node:module';
import { logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { clientLogLevel } from '../../src/infra/kafka/clientLog.js';

// KafkaJS's own table of broker error codes, so the messages below are the ones it really logs
const { errorCodes } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  errorCodes: Array<{ type: string; message: string; retriable: boolean }>;
};
const messageOf = (type: string): string => {
  const e = errorCodes.find((c) => c.type === type);
  if (!e) throw new Error(`KafkaJS has no error ${type}`);
  return e.message;
};

const STARTING_BROKER = [
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'GROUP_LOAD_IN_PROGRESS',
  'NOT_COORDINATOR_FOR_GROUP',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
];

describe('KafkaJS log lines', () => {
  it('a broker answer that only says the broker is still starting is debug, for every such state', () => {
    for (const type of STARTING_BROKER) {
      expect(errorCodes.find((c) => c.type === type)?.retriable, type).toBe(true);
      // as a fresh `npm run demo` logged them: the request in the message, the broker's answer in `error`
      expect(clientLogLevel(logLevel.ERROR, 'Response GroupCoordinator(key: 10, version: 2)', messageOf(type)), type).toBe('debug');
      expect(clientLogLevel(logLevel.ERROR, 'Response InitProducerId(key: 22, version: 1)', messageOf(type)), type).toBe('debug');
    }
  });

  it('a send retried because a topic just created has no leader yet is debug', () => {
    const line = `Failed to send messages: ${messageOf('UNKNOWN_TOPIC_OR_PARTITION')}`;
    expect(clientLogLevel(logLevel.ERROR, line, undefined)).toBe('debug');
  });

  it('a consumer that crashed keeps its ERROR even when a starting broker caused it', () => {
    const line = `Crash: KafkaJSNumberOfRetriesExceeded: ${messageOf('GROUP_COORDINATOR_NOT_AVAILABLE')}`;
    expect(clientLogLevel(logLevel.ERROR, line, undefined)).toBe('error');
  });

  it('any other broker answer keeps its level', () => {
    expect(clientLogLevel(logLevel.ERROR, 'Response Produce(key: 0, version: 7)', messageOf('OUT_OF_ORDER_SEQUENCE_NUMBER'))).toBe('error');
    expect(clientLogLevel(logLevel.ERROR, 'Response Produce(key: 0, version: 7)', messageOf('INVALID_PRODUCER_EPOCH'))).toBe('error');
    expect(clientLogLevel(logLevel.WARN, 'The group is rebalancing, re-joining', messageOf('REBALANCE_IN_PROGRESS'))).toBe('warn');
    expect(clientLogLevel(logLevel.INFO, 'Consumer has joined the group', undefined)).toBe('debug');
  });

  it("a transaction's send that meets the previous commit's markers is debug", () => {
    expect(clientLogLevel(logLevel.ERROR, 'Response AddPartitionsToTxn(key: 24, version: 1)', messageOf('CONCURRENT_TRANSACTIONS'))).toBe(
      'debug',
    );
  });
});
