/**
 * issue 14: Redis connections for BullMQ that fail fast at start and survive an outage later.
 *
 * ioredis retries a connection without end by default, and BullMQ's `waitUntilReady()` waits for
 * it: with a dead `REDIS_URL` (a closed port, a wrong password) `npm start` and `npm run worker`
 * hung forever. Here the first connection must be ready (and answer PING) within a deadline
 * (`REDIS_CONNECT_TIMEOUT_SECONDS`), else it is closed and start-up fails with a clear error
 * naming the host, never the password. Once connected, a lost connection is retried with a
 * bounded exponential backoff and logged (lost, each retry, back), and never crashes the process.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** The longest wait between two reconnection attempts, ms. */
export const MAX_RECONNECT_DELAY_MS = 10_000;

/**
 * ioredis's `retryStrategy`: 250 ms, 500 ms, 1 s... doubling up to {@link MAX_RECONNECT_DELAY_MS}.
 * @param attempt 1 for the first retry.
 * @returns the delay before that retry, ms.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(MAX_RECONNECT_DELAY_MS, 250 * 2 ** Math.max(0, Math.min(attempt - 1, 16)));
}

/** `host:port/db` of a Redis URL, without user or password (for logs and errors). */
export function redisTarget(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, '');
    return `${u.hostname || 'localhost'}:${u.port || '6379'}${db ? `/${db}` : ''}`;
  } catch {
    return 'an unparsable REDIS_URL';
  }
}

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  readonly logger: Logger;
  /** Most ms the first connection may take (connect, authenticate, PING). */
  readonly connectTimeoutMs: number;
  /** What the connection is for, in its log lines (`queue`, `events`, `worker`). */
  readonly role: string;
  /**
   * false: commands sent while disconnected fail at once instead of waiting for the connection
   * (BullMQ's advice for a `Queue` that adds jobs: the caller learns of the outage).
   */
  readonly offlineQueue?: boolean;
}

/** Why the first connection failed, in words, from ioredis's error. */
function reason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err.message === 'string' ? err.message : String(e);
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(message)) {
    return 'authentication failed (check the password in REDIS_URL)';
  }
  if (typeof err.code === 'string') return `${err.code}: ${message}`;
  return message;
}

/**
 * Opens a Redis connection for BullMQ (`maxRetriesPerRequest: null`, as its workers need), ready
 * and answering PING.
 * @throws {Error} within `connectTimeoutMs` when Redis cannot be reached or refuses the
 *   credentials; the message names `host:port/db` only, never the password.
 * @example
 * const redis = await connectRedis(config.REDIS_URL, { logger, connectTimeoutMs: 5000, role: 'queue' });
 */
export async function connectRedis(url: string, o: ConnectRedisOptions): Promise<Redis> {
  const target = redisTarget(url);
  const log = o.logger.child({ redis: target, role: o.role });
  let lastError: unknown;
  let connected = false;
  let down = false;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: o.connectTimeoutMs,
    enableOfflineQueue: o.offlineQueue ?? true,
    retryStrategy: (attempt) => {
      const delay = reconnectDelay(attempt);
      if (connected) log.warn({ attempt, delayMs: delay }, 'redis unreachable: reconnecting');
      return delay;
    },
  });
  // Without a listener, an 'error' event would throw and stop the process.
  redis.on('error', (e: unknown) => {
    lastError = e;
    if (connected && !down) {
      down = true;
      log.error(
        { err: { message: (e as Error).message, code: (e as { code?: unknown }).code } },
        'redis connection lost',
      );
    }
  });
  redis.on('ready', () => {
    if (down) log.info('redis connection back');
    down = false;
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${o.connectTimeoutMs} ms`)),
      o.connectTimeoutMs,
    );
  });
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.ping();
      })(),
      deadline,
    ]);
  } catch (e) {
    redis.disconnect();
    const why = reason(lastError ?? e);
    throw new Error(`Redis at ${target} (REDIS_URL) is not usable: ${why}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  connected = true;
  log.debug('redis connected');
  return redis;
}

/**
 * Checks at start-up, before anything slow is loaded, that `REDIS_URL` is usable: connects as
 * {@link connectRedis} does, then closes.
 * @throws {Error} within `connectTimeoutMs`, as {@link connectRedis}.
 */
export async function probeRedis(
  url: string,
  o: Pick<ConnectRedisOptions, 'logger' | 'connectTimeoutMs'>,
): Promise<void> {
  const redis = await connectRedis(url, { ...o, role: 'probe' });
  redis.disconnect();
}
