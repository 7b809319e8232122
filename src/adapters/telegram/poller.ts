/**
 * Long polling that loses and repeats nothing across a restart. Each batch from `getUpdates` is
 * stored (`telegram_updates`) before the next call's offset confirms it to Telegram; each update
 * is marked answered once the core has handled it. At start the unanswered ones (a stop in the
 * middle of a burst) are handled first, and polling resumes at the stored offset, so updates
 * Telegram sends again are recognised by their id and not handled twice.
 *
 * In place of `@grammyjs/runner`, whose source confirms a batch as soon as it fetches the next
 * one, whatever became of the first.
 */
import { GrammyError, type Bot } from 'grammy';
import type { Update } from 'grammy/types';
import type { Logger } from 'pino';
import type { TelegramUpdateRepository } from '../../db/telegram-update-repository.ts';

/** Options of {@link startPolling}. */
export interface PollingOptions {
  readonly bot: Bot;
  readonly updates: TelegramUpdateRepository;
  readonly logger: Logger;
  /** Updates handled at once (each may hold a downloaded photo). */
  readonly concurrency: number;
  readonly allowedUpdates: readonly string[];
  /** Long-poll timeout, seconds (default 30). */
  readonly timeoutSeconds?: number;
}

/** A running polling loop. */
export interface Polling {
  /** Ends with the loop: resolves on stop, rejects when Telegram refuses the token (401, 409). */
  readonly task: Promise<void>;
  /** Updates being handled now. */
  readonly inFlight: number;
  /** Stops fetching; resolves when the updates in hand are handled and marked answered. */
  stop(): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Starts polling: handles the updates left unanswered by the last run, then fetches new ones.
 * @example
 * const polling = await startPolling({ bot, updates: db.telegramUpdates, logger, concurrency: 50,
 *   allowedUpdates: ['message'] });
 * // on shutdown:
 * await polling.stop();
 */
export async function startPolling(options: PollingOptions): Promise<Polling> {
  const { bot, updates, logger: log } = options;
  const controller = new AbortController();
  const inHand = new Set<Promise<void>>();
  const waiting: (() => void)[] = [];

  /**
   * Handles one update in the background once a slot is free; resolves when it has one. After
   * stop() it handles nothing more: the update stays stored and unanswered for the next run.
   */
  async function dispatch(update: Update): Promise<void> {
    while (inHand.size >= options.concurrency) {
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    if (controller.signal.aborted) return;
    const id = update.update_id;
    const p = bot
      .handleUpdate(update)
      .catch((e: unknown) => log.error({ err: e, updateId: id }, 'telegram update failed'))
      .then(() => updates.answered(id))
      .catch((e: unknown) =>
        log.error({ err: e, updateId: id }, 'marking an update answered failed'),
      )
      .finally(() => {
        inHand.delete(p);
        waiting.shift()?.();
      });
    inHand.add(p);
  }

  const left = await updates.pending();
  if (left.length > 0)
    log.info({ count: left.length }, 'handling updates left unanswered by the last run');
  for (const u of left) await dispatch(JSON.parse(u.payload) as Update);
  let offset = await updates.nextOffset();

  async function loop(): Promise<void> {
    let backoff = 1000;
    while (!controller.signal.aborted) {
      let batch: Update[];
      try {
        batch = await bot.api.getUpdates(
          {
            ...(offset === undefined ? {} : { offset }),
            timeout: options.timeoutSeconds ?? 30,
            allowed_updates: options.allowedUpdates as never,
          },
          // grammY types its signal with the abort-controller polyfill's class; Node's is the same.
          controller.signal as Parameters<Bot['api']['getUpdates']>[1],
        );
        backoff = 1000;
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof GrammyError && (e.error_code === 401 || e.error_code === 409)) throw e;
        // Logged by bot.ts's transformer; wait and try again.
        await sleep(backoff, controller.signal);
        backoff = Math.min(backoff * 2, 30_000);
        continue;
      }
      if (batch.length === 0) continue;
      let fresh: Set<number>;
      try {
        fresh = new Set(
          await updates.receive(
            batch.map((u) => ({ updateId: u.update_id, payload: JSON.stringify(u) })),
          ),
        );
      } catch (e) {
        // Not stored, so not confirmed: the same batch comes again.
        log.error({ err: e }, 'storing telegram updates failed');
        await sleep(backoff, controller.signal);
        backoff = Math.min(backoff * 2, 30_000);
        continue;
      }
      offset = Math.max(...batch.map((u) => u.update_id)) + 1;
      for (const u of batch) {
        if (controller.signal.aborted) break;
        if (fresh.has(u.update_id)) await dispatch(u);
        else log.info({ updateId: u.update_id }, 'telegram update seen before: not handled again');
      }
    }
  }

  const task = loop();
  return {
    task,
    get inFlight() {
      return inHand.size;
    },
    async stop() {
      controller.abort();
      for (const w of waiting.splice(0)) w();
      await task.catch(() => undefined);
      while (inHand.size > 0) await Promise.allSettled([...inHand]);
    },
  };
}
