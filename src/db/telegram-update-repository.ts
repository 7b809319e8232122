import type { AppPrismaClient } from './client.ts';

/** A Telegram update received and not yet answered. */
export interface PendingUpdate {
  readonly updateId: number;
  /** The update as the Bot API sent it (JSON). */
  readonly payload: string;
}

/**
 * Telegram updates as received by long polling (table `telegram_updates`): each is stored
 * before the next `getUpdates` confirms it to Telegram, and marked answered once handled, so an
 * update is neither lost nor handled twice across a restart.
 */
export interface TelegramUpdateRepository {
  /**
   * Stores updates as received; an id already stored is left as it is (Telegram sent it again).
   * @returns the ids stored now, i.e. not seen before, in id order.
   */
  receive(updates: readonly PendingUpdate[]): Promise<number[]>;
  /** Marks an update answered. */
  answered(updateId: number): Promise<void>;
  /** Updates received but not answered (a stop in the middle of a burst), oldest first. */
  pending(): Promise<PendingUpdate[]>;
  /** The durable polling offset: the highest update id received, plus one; undefined if none. */
  nextOffset(): Promise<number | undefined>;
  /** Deletes answered updates received before `before`, except the newest (it holds the offset). */
  prune(before: Date): Promise<number>;
}

/**
 * Creates the repository over a Prisma client (SQLite or PostgreSQL).
 * @example
 * const fresh = await updates.receive([{ updateId: 7, payload: JSON.stringify(update) }]);
 */
export function createTelegramUpdateRepository(prisma: AppPrismaClient): TelegramUpdateRepository {
  return {
    async receive(updates) {
      if (updates.length === 0) return [];
      const ids = updates.map((u) => BigInt(u.updateId));
      const known = new Set(
        (
          await prisma.telegramUpdate.findMany({
            where: { updateId: { in: ids } },
            select: { updateId: true },
          })
        ).map((r) => Number(r.updateId)),
      );
      const fresh = updates.filter((u) => !known.has(u.updateId));
      if (fresh.length > 0) {
        // One polling loop writes: no other writer races for these ids.
        await prisma.telegramUpdate.createMany({
          data: fresh.map((u) => ({ updateId: BigInt(u.updateId), payload: u.payload })),
        });
      }
      return fresh.map((u) => u.updateId).sort((a, b) => a - b);
    },
    async answered(updateId) {
      await prisma.telegramUpdate.update({
        where: { updateId: BigInt(updateId) },
        data: { answeredAt: new Date() },
      });
    },
    async pending() {
      const rows = await prisma.telegramUpdate.findMany({
        where: { answeredAt: null },
        orderBy: { updateId: 'asc' },
      });
      return rows.map((r) => ({ updateId: Number(r.updateId), payload: r.payload }));
    },
    async nextOffset() {
      const top = await prisma.telegramUpdate.aggregate({ _max: { updateId: true } });
      const max = top._max.updateId;
      return max === null ? undefined : Number(max) + 1;
    },
    async prune(before) {
      const newest = await prisma.telegramUpdate.aggregate({ _max: { updateId: true } });
      const { count } = await prisma.telegramUpdate.deleteMany({
        where: {
          answeredAt: { not: null },
          receivedAt: { lt: before },
          ...(newest._max.updateId === null ? {} : { updateId: { lt: newest._max.updateId } }),
        },
      });
      return count;
    },
  };
}

/**
 * The same in memory, for tests and for a bot without a database.
 * @example
 * const updates = createMemoryTelegramUpdates();
 */
export function createMemoryTelegramUpdates(): TelegramUpdateRepository & {
  readonly rows: Map<number, { payload: string; answered: boolean; receivedAt: Date }>;
} {
  const rows = new Map<number, { payload: string; answered: boolean; receivedAt: Date }>();
  return {
    rows,
    receive(updates) {
      const fresh = updates.filter((u) => !rows.has(u.updateId));
      for (const u of fresh) {
        rows.set(u.updateId, { payload: u.payload, answered: false, receivedAt: new Date() });
      }
      return Promise.resolve(fresh.map((u) => u.updateId).sort((a, b) => a - b));
    },
    answered(updateId) {
      const r = rows.get(updateId);
      if (r) r.answered = true;
      return Promise.resolve();
    },
    pending() {
      return Promise.resolve(
        [...rows.entries()]
          .filter(([, r]) => !r.answered)
          .sort(([a], [b]) => a - b)
          .map(([updateId, r]) => ({ updateId, payload: r.payload })),
      );
    },
    nextOffset() {
      return Promise.resolve(rows.size === 0 ? undefined : Math.max(...rows.keys()) + 1);
    },
    prune(before) {
      const newest = Math.max(...rows.keys());
      let n = 0;
      for (const [id, r] of rows) {
        if (r.answered && r.receivedAt < before && id < newest) {
          rows.delete(id);
          n++;
        }
      }
      return Promise.resolve(n);
    },
  };
}
