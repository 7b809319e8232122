/**
 * Nothing lost, nothing repeated: the bot is stopped in the middle of a burst of photos and
 * started again over the same SQLite file; every photo is answered exactly once and has exactly
 * one submission row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaPersistence } from '../../src/adapters/persistence/prisma-persistence.ts';
import { ALLOWED_UPDATES, buildTelegramBot } from '../../src/adapters/telegram/bot.ts';
import { startPolling, type Polling } from '../../src/adapters/telegram/poller.ts';
import { createCore, type Core } from '../../src/core/dispatcher.ts';
import { buildCoreServices } from '../../src/core/services.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import {
  startFakeTelegram,
  TOO_MANY_REQUESTS,
  type FakeTelegram,
} from '../fakes/telegram-server.ts';
import { MODELS_DIR, readImg } from '../unit/core/helpers.ts';

const logger = pino({ level: 'silent' });
let tg: FakeTelegram;
let dir: string;
const registry = new ModelRegistry(MODELS_DIR);

beforeAll(async () => {
  await initBackend();
  tg = await startFakeTelegram();
  dir = await mkdtemp(path.join(os.tmpdir(), 'telegram-restart-'));
});
afterAll(async () => {
  await tg.close();
  await registry.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** One run of the bot: the database opened anew, a core, a bot, polling with 2 slots. */
async function startRun(): Promise<{ db: Database; core: Core; polling: Polling }> {
  const db = await openDatabase({ DATA_DIR: dir });
  const core = createCore(
    buildCoreServices({
      config: {
        MAX_IMAGE_BYTES: 2_000_000,
        MAX_IMAGE_PIXELS: 40_000_000,
        DEFAULT_MODEL: 'lenet-mnist',
      },
      registry,
      persistence: createPrismaPersistence(db),
      logger,
    }),
    { rateLimit: false, chatRateLimit: false },
  );
  const { bot } = buildTelegramBot(core, {
    token: tg.token,
    apiRoot: tg.apiRoot,
    maxDownloadBytes: 20 << 20,
    logger,
  });
  bot.botInfo = await bot.api.getMe();
  const polling = await startPolling({
    bot,
    updates: db.telegramUpdates,
    logger,
    concurrency: 2,
    allowedUpdates: ALLOWED_UPDATES,
    timeoutSeconds: 1,
  });
  return { db, core, polling };
}

describe('a restart in the middle of a burst', () => {
  it('answers every photo exactly once, with exactly one row each', async () => {
    const digits = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => readImg(`${d}.png`)),
    );
    const sent = Array.from({ length: 24 }, (_, i) => {
      const from = { id: 5000 + (i % 12), is_bot: false, first_name: `Student ${i % 12}` };
      const bytes = digits[i % 10]!;
      return i % 2 === 0
        ? tg.send({ from, photo: bytes })
        : tg.send({ from, document: { bytes, fileName: `${i}.png`, mimeType: 'image/png' } });
    });
    // Flood control on some replies: auto-retry waits and sends them again.
    tg.failNext('sendPhoto', 2, TOO_MANY_REQUESTS);

    const first = await startRun();
    await tg.waitFor((s) => s.filter((m) => m.method === 'sendPhoto').length >= 5, 60_000);
    // What `npm start` does on SIGTERM: stop fetching, finish the updates in hand, close.
    await first.polling.stop();
    await first.core.close(10_000);
    const answeredBefore = new Set(tg.sent.map((m) => m.replyTo));
    const pendingAtStop = await first.db.telegramUpdates.pending();
    await first.db.close();
    expect(answeredBefore.size).toBeLessThan(sent.length); // stopped in the middle
    expect(pendingAtStop.length).toBeGreaterThan(0); // some fetched, stored, not yet handled

    const second = await startRun();
    try {
      await tg.waitFor(() => sent.every((m) => tg.repliesTo(m.message_id).length > 0), 120_000);
      await new Promise((r) => setTimeout(r, 1500)); // a duplicate would arrive by now
      for (const m of sent) {
        const replies = tg.repliesTo(m.message_id);
        expect(replies, `message ${m.message_id}`).toHaveLength(1);
        expect(replies[0]!.method).toBe('sendPhoto');
        expect(replies[0]!.caption).toMatch(/^lenet-mnist: \d /);
      }
      const rows = await messageIdsOfRows(second.db);
      expect(rows).toHaveLength(sent.length);
      expect(new Set(rows).size).toBe(sent.length);
      expect(rows.sort()).toEqual(sent.map((m) => String(m.message_id)).sort());
      expect(await second.db.telegramUpdates.pending()).toEqual([]);
    } finally {
      await second.polling.stop();
      await second.core.close(5000);
      await second.db.close();
    }
  }, 240_000);
});

/** The message id of every submission row of the burst's twelve users. */
async function messageIdsOfRows(db: Database): Promise<string[]> {
  const { submissions } = createPrismaPersistence(db);
  const ids: string[] = [];
  for (let u = 0; u < 12; u++) {
    const rows = await submissions.listRecent(
      { platform: 'telegram', userId: String(5000 + u) },
      100,
    );
    ids.push(...rows.map((r) => r.messageId));
  }
  return ids;
}
