import { pino, type Logger } from 'pino';

/**
 * The one logger. Tokens, secrets and gifticon codes are redacted wherever they appear in a
 * logged object, so a careless `log.info({ event })` cannot leak them.
 */
export const logger: Logger = pino({
  level: process.env.LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'warn' : 'info'),
  base: { pid: process.pid },
  redact: {
    paths: [
      'gifticon.code',
      '*.gifticon.code',
      'event.code',
      'events[*].code',
      'authorization',
      '*.authorization',
      'headers.authorization',
      'req.headers.authorization',
      'token',
      '*.token',
      'JWT_SECRET',
      '*.JWT_SECRET',
    ],
    censor: '[redacted]',
  },
});

export type { Logger };
