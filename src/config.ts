import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Absolute path of the project root (the folder holding package.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

const schema = z.object({
  /** Where datasets, the SQLite file and stored images live. */
  DATA_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, 'data')),
  /**
   * A read-only folder laid out like `DATA_DIR` (`mnist/`, `cifar-10/`, `imagenet/`...), for
   * instance a course's shared copy, searched after `DATA_DIR` for data sets and third-party
   * models, so a lab machine can train without downloading anything.
   */
  CNN_SHARED_DATA: z.string().min(1).optional(),
  /** Where trained models (model.json + weights + meta.json) live. */
  MODELS_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, 'models')),
  /** Forces a TF.js backend instead of the automatic choice. */
  TFJS_BACKEND: z.enum(BACKENDS).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Largest accepted upload, bytes (default 20 MB, decimal as every size this project shows). */
  MAX_IMAGE_BYTES: z.coerce.number().int().positive().default(20_000_000),
  /** Largest accepted image, pixels (width x height), checked from the header before decoding. */
  MAX_IMAGE_PIXELS: z.coerce.number().int().positive().default(40_000_000),
  /**
   * Where chat submissions are logged. Unset: the SQLite file `<DATA_DIR>/cnn-classroom.db`.
   * `postgres://` or `postgresql://` (optionally `?schema=name`): that PostgreSQL database.
   * `file:<path>`: that SQLite file.
   */
  DATABASE_URL: z
    .string()
    .regex(/^(postgres|postgresql):\/\/|^file:./, 'expected a postgresql:// or file: URL')
    .optional(),
  /** Model that classifies bare photos in chats without their own default. */
  DEFAULT_MODEL: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/)
    .default('lenet-mnist'),
  /** Updates one user may send per minute; the first one over gets a polite reply. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(12),
  /** Port of the local web chat (127.0.0.1 only); 0 picks a free port. */
  WEB_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Telegram bot token from @BotFather; starts the Telegram adapter. Never logged. */
  TELEGRAM_BOT_TOKEN: z.string().min(1).optional(),
  /** Discord bot token; with DISCORD_APPLICATION_ID starts the Discord adapter. Never logged. */
  DISCORD_TOKEN: z.string().min(1).optional(),
  DISCORD_APPLICATION_ID: z.string().min(1).optional(),
  /**
   * Discord REST API root (default `https://discord.com/api`); the gateway address then comes
   * from its `GET /gateway/bot`. For a proxy, or the fake Discord in the tests.
   */
  DISCORD_API_ROOT: z
    .url({ protocol: /^https?$/ })
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  /** `npm run deploy-commands` registers the slash commands in this guild only (instantly). */
  DISCORD_GUILD_ID: z
    .string()
    .regex(/^\d{15,21}$/, 'expected a Discord id (digits)')
    .optional(),
  /**
   * Bot API server (default `https://api.telegram.org`): a local Bot API server for large
   * courses, or the fake one in the tests.
   */
  TELEGRAM_API_ROOT: z
    .url({ protocol: /^https?$/ })
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  /**
   * Largest file the bot downloads, bytes: the Bot API's `getFile` limit, which its documentation
   * calls 20 MB and its server counts as `20 << 20` bytes. Raise it only with a local Bot API
   * server (`TELEGRAM_API_ROOT`), which lifts that limit.
   */
  TELEGRAM_MAX_DOWNLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024),
  /** Public HTTPS address Telegram posts updates to; unset: long polling. */
  TELEGRAM_WEBHOOK_URL: z.url({ protocol: /^https$/ }).optional(),
  /** Where the webhook server listens (behind the TLS proxy that serves the URL above). */
  TELEGRAM_WEBHOOK_HOST: z.string().min(1).default('0.0.0.0'),
  TELEGRAM_WEBHOOK_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /**
   * Secret Telegram sends with every webhook request (`X-Telegram-Bot-Api-Secret-Token`);
   * unset: a random one per start. Never logged.
   */
  TELEGRAM_WEBHOOK_SECRET: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, 'expected 1-256 characters A-Z, a-z, 0-9, _ or -')
    .optional(),
  // issue 14: roles and the trainer
  /**
   * Administrators, by platform and platform user id: `telegram:12345,discord:678901234567890123`.
   * Only they may `/grant` and `/revoke` the instructor role. Checked by user, never by chat.
   */
  ADMINS: z
    .string()
    .transform((s, ctx) => {
      const out: { platform: 'telegram' | 'discord' | 'web'; userId: string }[] = [];
      for (const item of s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const m = /^(telegram|discord|web):([A-Za-z0-9_-]{1,64})$/.exec(item);
        if (!m?.[1] || !m[2]) {
          ctx.addIssue({ code: 'custom', message: `expected platform:id, got "${item}"` });
          return z.NEVER;
        }
        out.push({ platform: m[1] as 'telegram' | 'discord' | 'web', userId: m[2] });
      }
      return out;
    })
    .default([]),
  /**
   * The local web chat's operator token (the `?token=` of the URL `npm start` prints); unset: a
   * random one per start. Whoever opens the chat with it is admin there. Never logged.
   */
  WEB_OPERATOR_TOKEN: z
    .string()
    .regex(/^[A-Za-z0-9_-]{16,256}$/, 'expected 16-256 characters A-Z, a-z, 0-9, _ or -')
    .optional(),
  /** Largest `epochs=` a `/retrain` may ask for. */
  TRAIN_MAX_EPOCHS: z.coerce.number().int().positive().default(30),
  /** Largest `batch=` a `/retrain` may ask for. */
  TRAIN_MAX_BATCH: z.coerce.number().int().positive().default(1024),
  /** Jobs one instructor may have queued or running at once. */
  TRAIN_JOBS_PER_INSTRUCTOR: z.coerce.number().int().positive().default(2),
  /** A running job whose worker has not renewed its lease for this long is taken over. */
  TRAIN_LEASE_SECONDS: z.coerce.number().int().min(2).default(60),
  /** Tries of a job (its first run and resumes after a dead worker) before it fails. */
  TRAIN_MAX_ATTEMPTS: z.coerce.number().int().positive().default(3),
  /** `false`: `npm start` runs no trainer worker of its own (workers run elsewhere). */
  TRAINER_EMBEDDED: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .default(true),
  /** How often a bot process checks which model versions are served, seconds. */
  MODEL_POLL_SECONDS: z.coerce.number().positive().default(3),
  /**
   * Redis for the scaled-out job queue (BullMQ): `redis://[:password@]host:port[/db]`. Unset:
   * the database is the queue. Never logged.
   */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
    .optional(),
});

/** The validated, typed configuration. */
export type Config = z.infer<typeof schema>;

/**
 * Reads and validates the configuration from an environment.
 * @throws {Error} listing every invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const clean = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = schema.safeParse(clean);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Loads `.env` from the working directory or the project root, if there is one. */
export function loadDotEnv(): void {
  for (const dir of [process.cwd(), PROJECT_ROOT]) {
    const file = path.join(dir, '.env');
    if (existsSync(file)) {
      // Node's own parser; variables already in the environment win.
      process.loadEnvFile(file);
      return;
    }
  }
}
