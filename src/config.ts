import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Absolute path of the project root (the folder holding package.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

const schema = z.object({
  /** Where datasets, the SQLite file and stored images live. */
  DATA_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, 'data')),
  /** Where trained models (model.json + weights + meta.json) live. */
  MODELS_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, 'models')),
  /** Forces a TF.js backend instead of the automatic choice. */
  TFJS_BACKEND: z.enum(BACKENDS).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Largest accepted upload, bytes. */
  MAX_IMAGE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024),
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
