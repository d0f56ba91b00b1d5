import { logLevel } from 'kafkajs';

/** The level of ours a KafkaJS log line is written at. */
export type ClientLogLevel = 'error' | 'warn' | 'debug';

/**
 * States a broker passes through while it starts, or while a topic it just created gets a leader:
 * the coordinators of __consumer_offsets / __transaction_state not there yet, loading or moving, a
 * new partition without a leader. KafkaJS retries the request itself and logs each failed attempt
 * at ERROR (a fresh `npm run demo` printed a dozen such lines before its first answer); when the
 * retries run out, the caller fails with its own error, so an attempt is debug.
 */
const STARTUP_STATES = [
  'The group coordinator is not available',
  "The coordinator is loading and hence can't process requests",
  'This is not the correct coordinator for this group',
  'This server does not host this topic-partition',
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
  // a new topic's leaders take a moment to serve it (topicReady.ts waits for them)
  'This server is not the leader for that topic-partition',
];

// every transaction's first send meets CONCURRENT_TRANSACTIONS while the previous commit's
// markers are written, and is retried (see the single writer's sink): under load that was two error
// lines per transaction, all noise
const CONCURRENT_TRANSACTIONS = /another concurrent operation on the same transaction/;

/** Is this line one failed attempt KafkaJS will retry (a broker's answer, a send), not an outcome such as a crash? */
function retriedAttempt(message: string): boolean {
  return message.startsWith('Response ') || message.startsWith('Failed to send messages: ');
}

export function clientLogLevel(level: logLevel, message: string, error: unknown): ClientLogLevel {
  const text = `${message} ${String(error ?? '')}`;
  if (CONCURRENT_TRANSACTIONS.test(text)) return 'debug';
  if (retriedAttempt(message) && STARTUP_STATES.some((s) => text.includes(s))) return 'debug';
  if (level === logLevel.ERROR) return 'error';
  if (level === logLevel.WARN) return 'warn';
  return 'debug';
}
