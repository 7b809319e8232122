import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { registerSecrets, secretsOfConfig } from './secrets.ts';

/** Absolute path of the project root (the folder holding package.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

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
  /**
   * Log level; unset: `info` for the bot, `warn` for the command line (which speaks through its
   * output), `silent` under vitest.
   */
  LOG_LEVEL: z.enum(LOG_LEVELS).optional(),
  /** Largest accepted upload, bytes (default 20 MB, decimal as every size this project shows). */
  MAX_IMAGE_BYTES: z.coerce.number().int().positive().default(20_000_000),
  /**
   * Most pixels decoded (width x height), checked from the header before decoding. JPEGs up to 8x
   * this are decoded shrunk on load; the models need 224 px and overlays 1024 px (issue 19).
   */
  MAX_IMAGE_PIXELS: z.coerce.number().int().positive().default(16_000_000),
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
    .default('digits-photo'),
  /** Updates one user may send per minute; the first one over gets a polite reply. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(12),
  // issue 15: the live bot in a busy lab
  /** Updates one group chat may send per minute, all its users together. */
  RATE_LIMIT_PER_CHAT_PER_MINUTE: z.coerce.number().int().positive().default(60),
  /** Inference worker threads (decode, predict, Grad-CAM); default: one per core. */
  INFERENCE_WORKERS: z.coerce.number().int().positive().optional(),
  /** Photos waiting for a worker before more are answered "busy, try again in N s". */
  INFERENCE_QUEUE_MAX: z.coerce.number().int().positive().default(64),
  /** Deadline of one classification (decode included), seconds; over it the worker is replaced. */
  PREDICT_DEADLINE_SECONDS: z.coerce.number().positive().default(20),
  /** Deadline of one explanation (Grad-CAM, saliency, SmoothGrad), seconds. */
  EXPLAIN_DEADLINE_SECONDS: z.coerce.number().positive().default(60),
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
  /**
   * Where the webhook server listens: loopback by default, behind the TLS proxy that serves the
   * URL above (issue 19); `0.0.0.0` only when the proxy runs on another machine.
   */
  TELEGRAM_WEBHOOK_HOST: z.string().min(1).default('127.0.0.1'),
  TELEGRAM_WEBHOOK_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /**
   * Secret Telegram sends with every webhook request (`X-Telegram-Bot-Api-Secret-Token`);
   * unset: a random one per start. Never logged.
   */
  TELEGRAM_WEBHOOK_SECRET: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, 'expected 1-256 characters A-Z, a-z, 0-9, _ or -')
    .optional(),
  // issue 19: stored images and server hardening
  /**
   * Most bytes of photos kept per user in the image store; over it photos are still answered and
   * recorded (hash, size), their bytes not kept. 0: no quota. Default 200 MB.
   */
  IMAGE_QUOTA_BYTES: z.coerce.number().int().min(0).default(200_000_000),
  /**
   * Days a stored photo is kept after its last submission; `cnn-classroom images prune` deletes
   * older ones except those an instructor keeps (`images keep`). 0: keep forever. Default 180.
   */
  IMAGE_RETENTION_DAYS: z.coerce.number().int().min(0).default(180),
  /**
   * Key that signs the web chat's identity cookie; unset: a random one per start (identities
   * then last until a restart). Never logged.
   */
  WEB_SESSION_SECRET: z.string().min(16).optional(),
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
  /**
   * issue 16: fewest usable labelled class photos a `/retrain <model> with=class` job needs;
   * fewer are refused at once with the count needed.
   */
  CLASS_MIN_PHOTOS: z.coerce.number().int().min(2).default(50),
  /** How often a bot process checks which model versions are served, seconds. */
  MODEL_POLL_SECONDS: z.coerce.number().positive().default(3),
  /**
   * Retention: after a job adds a version, keep this many of the model's newest trained versions
   * (besides version 0, the served one and the one a `/rollback` goes back to) and delete the
   * rest (`versions prune` does it by hand). Unset: every version is kept.
   */
  MODEL_VERSIONS_KEEP: z.coerce.number().int().min(1).optional(),
  /**
   * Redis for the scaled-out job queue (BullMQ): `redis://[:password@]host:port[/db]`. Unset:
   * the database is the queue. Never logged.
   */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
    .optional(),
  /**
   * issue 14: most seconds `npm start` / `npm run worker` wait for Redis (connect, authenticate,
   * PING) before failing with a clear error; later outages are retried with a bounded backoff.
   */
  REDIS_CONNECT_TIMEOUT_SECONDS: z.coerce.number().positive().max(300).default(5),
});

/** The validated, typed configuration. */
export type Config = z.infer<typeof schema>;

/** Variables as the environment holds them. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The `.env` file read by {@link readEnvironment}: the one in the working directory, else the
 * one in the project root; `undefined` when neither exists.
 */
export function findDotEnv(
  dirs: readonly string[] = [process.cwd(), PROJECT_ROOT],
): string | undefined {
  return dirs.map((dir) => path.join(dir, '.env')).find((file) => existsSync(file));
}

/**
 * The process environment over the variables of the `.env` file ({@link findDotEnv}, Node's own
 * parser `util.parseEnv`): a variable set in the environment wins over the file. Read by the
 * bot, the worker and the command line alike, so that `CNN_SHARED_DATA` in `.env` works for
 * `bin/cnn-classroom` as for `npm start`.
 * @throws {Error} when the `.env` file exists but cannot be read.
 */
export function readEnvironment(dotEnv: string | undefined = findDotEnv()): Environment {
  const fromFile = dotEnv === undefined ? {} : parseEnv(readFileSync(dotEnv, 'utf8'));
  return { ...fromFile, ...process.env };
}

/**
 * `CNN_CLASSROOM_KERNELS` (`native`, `wasm` or unset): which engine runs the in-place kernels,
 * read where the kernels load (in every thread that trains or infers, before any configuration
 * object reaches it); `src/ml/kernels/native-kernels.ts` validates it.
 */
export function kernelsSetting(env: Environment = process.env): string | undefined {
  return env.CNN_CLASSROOM_KERNELS;
}

/**
 * The logger's level before any configuration is loaded: a valid `LOG_LEVEL` from the
 * environment, else `silent` under vitest, else `info`.
 */
export function initialLogLevel(env: Environment = process.env): (typeof LOG_LEVELS)[number] {
  const wanted = LOG_LEVELS.find((l) => l === env.LOG_LEVEL);
  return wanted ?? (underTest(env) ? 'silent' : 'info');
}

/** Whether the process runs under vitest (which sets `VITEST`): the log stays silent by default. */
export function underTest(env: Environment = process.env): boolean {
  return env.VITEST !== undefined && env.VITEST !== '';
}

/**
 * Reads and validates the configuration. This module is the only reader of `process.env` and
 * `.env` in `src/`: everything else receives the values it needs from the returned object.
 *
 * @param env the variables to read; default {@link readEnvironment} (the environment over `.env`).
 * @throws {Error} listing every invalid variable.
 * @example
 * const config = loadConfig();
 * config.DATA_DIR; // '/srv/cnn-classroom/data'
 */
export function loadConfig(env: Environment = readEnvironment()): Config {
  const clean = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = schema.safeParse(clean);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  // Before anything can fail with a secret in its message (issue 19).
  registerSecrets(secretsOfConfig(result.data));
  return result.data;
}
