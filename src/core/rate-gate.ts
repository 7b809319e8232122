/**
 * The rate limit every update passes first, before any answer or database write: per user and
 * per group chat (rate-limiter-flexible's in-memory token windows). A user over the limit gets
 * one notice per window; their last message of the window is kept and handled when the window
 * ends (or, still over a limit then, answered with a second short notice): never silence.
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { ChatContext } from './context.ts';

/** At most `points` updates per `durationSeconds`. */
export interface RateLimit {
  readonly points: number;
  readonly durationSeconds: number;
}

/** What the gate decided for one update. */
export type GateDecision =
  | { readonly kind: 'pass' }
  /** Over the limit; the first of its window: send the notice, the update waits `seconds`. */
  | { readonly kind: 'notice'; readonly seconds: number }
  /** Over the limit again: the update replaces the one waiting (which is dropped). */
  | { readonly kind: 'wait' };

/** Counters of the gate. */
export interface GateStats {
  /** Updates over a limit (each counted, none written as a row). */
  limited: number;
  /** Waiting updates replaced by a later one of the same user (never answered). */
  superseded: number;
  /** Waiting updates handled at the end of their window. */
  answeredLate: number;
  /** Waiting updates still over a limit at the end of their window (second notice). */
  droppedLate: number;
}

interface Waiting {
  ctx: ChatContext;
  /** Resolves the `handle()` of the waiting update (adapters that await it: the web chat). */
  release: () => void;
  timer: NodeJS.Timeout;
}

/** The gate of {@link createRateGate}. */
export interface RateGate {
  /** Counts `ctx` against its user's and chat's limits. */
  check(ctx: ChatContext): Promise<GateDecision>;
  /**
   * Keeps `ctx` as its user's waiting update (replacing, and releasing, an earlier one); at the
   * end of the window `late(ctx, admitted)` runs, `admitted` false when still over a limit.
   * @returns resolves when `ctx` has been handled late or replaced.
   */
  defer(ctx: ChatContext, seconds: number): Promise<void>;
  readonly stats: Readonly<GateStats>;
  /** Cancels the timers; waiting updates run now with `admitted` true (shutdown drains them). */
  flush(): void;
}

const keyOf = (ctx: ChatContext): string => `${ctx.platform}:${ctx.user.id}`;

/**
 * Creates a {@link RateGate}.
 * @param late handles a waiting update at the end of its window (see {@link RateGate.defer}).
 * @example
 * const gate = createRateGate({ points: 12, durationSeconds: 60 }, { points: 60, durationSeconds: 60 },
 *   (ctx, admitted) => (admitted ? handleNow(ctx) : ctx.reply(t('rate_limited.dropped'))));
 */
export function createRateGate(
  perUser: RateLimit | false,
  perChat: RateLimit | false,
  late: (ctx: ChatContext, admitted: boolean) => Promise<void>,
): RateGate {
  const users =
    perUser === false
      ? undefined
      : new RateLimiterMemory({ points: perUser.points, duration: perUser.durationSeconds });
  const chats =
    perChat === false
      ? undefined
      : new RateLimiterMemory({ points: perChat.points, duration: perChat.durationSeconds });
  const waiting = new Map<string, Waiting>();
  const stats: GateStats = { limited: 0, superseded: 0, answeredLate: 0, droppedLate: 0 };

  /** Milliseconds until `ctx` may pass, or 0 when it passes (and is counted). */
  async function consume(ctx: ChatContext): Promise<number> {
    try {
      await users?.consume(keyOf(ctx));
      // Private chats are their user's: only groups have a limit of their own.
      if (ctx.chat.type === 'group') await chats?.consume(`${ctx.platform}:${ctx.chat.id}`);
      return 0;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      return Math.max(1, e.msBeforeNext);
    }
  }

  async function runLate(key: string, admittedOverride?: boolean): Promise<void> {
    const w = waiting.get(key);
    if (!w) return;
    waiting.delete(key);
    clearTimeout(w.timer);
    const admitted = admittedOverride ?? (await consume(w.ctx)) === 0;
    if (admitted) stats.answeredLate++;
    else stats.droppedLate++;
    try {
      await late(w.ctx, admitted);
    } finally {
      w.release();
    }
  }

  return {
    stats,
    async check(ctx) {
      if (!users && !chats) return { kind: 'pass' };
      const ms = await consume(ctx);
      if (ms === 0) return { kind: 'pass' };
      stats.limited++;
      return waiting.has(keyOf(ctx))
        ? { kind: 'wait' }
        : { kind: 'notice', seconds: Math.ceil(ms / 1000) };
    },
    defer(ctx, seconds) {
      const key = keyOf(ctx);
      const before = waiting.get(key);
      return new Promise<void>((release) => {
        if (before) {
          stats.superseded++;
          before.ctx = ctx;
          const previous = before.release;
          before.release = release;
          previous();
          return;
        }
        const timer = setTimeout(() => void runLate(key), seconds * 1000 + 50);
        waiting.set(key, { ctx, release, timer });
      });
    },
    flush() {
      for (const key of [...waiting.keys()]) void runLate(key, true);
    },
  };
}
