import { pino, type Logger } from 'pino';

/**
 * The process-wide structured logger (pino, JSON lines on stderr so stdout stays clean for
 * `--json` CLI output). Secrets are redacted by key name.
 */
export const logger: Logger = pino(
  {
    level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
    redact: {
      paths: ['*.token', '*.password', '*.TELEGRAM_BOT_TOKEN', '*.DISCORD_TOKEN'],
      censor: '[secret]',
    },
  },
  pino.destination(2),
);
