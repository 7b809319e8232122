/**
 * The trainer end to end over Telegram: the real core, grammY against the fake Bot API server,
 * SQLite, the embedded worker running each job in a child process on the banded MNIST fixture,
 * the progress reporter and the served-version watcher.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import type { Message } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTelegram, type RunningTelegram } from '../../../src/adapters/telegram/start.ts';
import { loadConfig } from '../../../src/config.ts';
import type { Core } from '../../../src/core/index.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { startTrainerRuntime, type TrainerRuntime } from '../../../src/jobs/trainer-runtime.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';
import { FIXTURE_SPEC, trainerCore } from './trainer-fixture.ts';
import {
  startFakeTelegram,
  type FakeTelegram,
  type SentMessage,
} from '../../fakes/telegram-server.ts';
import { MODELS_DIR, readImg } from '../../unit/core/helpers.ts';

let tg: FakeTelegram;
let bot: RunningTelegram;
let core: Core;
let db: Database;
let registry: ModelRegistry;
let trainer: TrainerRuntime;
let root: string;
const spawned: number[] = [];

const user = (id: number, first_name: string, language_code = 'en') => ({
  id,
  is_bot: false as const,
  first_name,
  language_code,
});
const admin = user(1, 'Admin');
const teacher = user(201, 'Irina', 'ru');
const student = user(301, 'Sam');
const group = { id: -100777, type: 'supergroup' as const, title: 'CNN lab' };

async function answer(m: Message, timeoutMs = 20_000): Promise<SentMessage> {
  await tg.waitFor(() => tg.repliesTo(m.message_id).length > 0, timeoutMs);
  return tg.repliesTo(m.message_id)[0]!;
}

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(path.join(os.tmpdir(), 'tg-trainer-'));
  const dataDir = path.join(root, 'data');
  // 30 batches of 30 to train on, so the job runs long enough to report several times.
  await writeBandedIdx(dataDir, 'mnist', { train: 1200, test: 100 });
  tg = await startFakeTelegram();
  db = await openDatabase({ DATA_DIR: dataDir });
  registry = new ModelRegistry(MODELS_DIR);
  await registry.get('lenet-mnist');
  const logger = pino({ level: 'silent' });
  const config = loadConfig({
    DATA_DIR: dataDir,
    MODELS_DIR,
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.apiRoot,
    ADMINS: `telegram:${admin.id}`,
    // Bare photos answered by the model being retrained (the shipped default is digits-photo).
    DEFAULT_MODEL: 'lenet-mnist',
  });
  trainer = await startTrainerRuntime(config, db, registry, logger, {
    specDefaults: FIXTURE_SPEC,
    pollMs: 200,
    minEditMs: 400,
    onSpawn: (_job, pid) => spawned.push(pid),
  });
  core = trainerCore(config, db, registry, trainer, logger);
  bot = await startTelegram(config, core, logger);
  trainer.startReporter(bot.messenger ? [bot.messenger] : []);
});

afterAll(async () => {
  await bot?.stop();
  await trainer?.close();
  await tg?.close();
  await registry?.dispose();
  await db?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('retraining from Telegram', () => {
  it('an admin grants the instructor role by reply; a student is refused /retrain', async () => {
    const hello = tg.send({ from: teacher, chat: group, text: 'Здравствуйте' });
    const grant = tg.send({ from: admin, chat: group, text: '/grant instructor', replyTo: hello });
    expect((await answer(grant)).text).toBe('Irina is now an instructor.');
    const refused = tg.send({ from: student, chat: group, text: '/retrain lenet-mnist epochs=1' });
    expect((await answer(refused)).text).toMatch(/^Sorry, \/retrain is for instructors only/);
    const over = tg.send({ from: teacher, chat: group, text: '/retrain lenet-mnist epochs=500' });
    expect((await answer(over)).text).toBe(
      'epochs 500 больше предела 30, заданного в настройках сервера (TRAIN_MAX_EPOCHS).',
    );
  });

  it("runs the instructor's /retrain in a child process, edits one message, answers photos meanwhile, promotes version 1", async () => {
    const tensorsBefore = tf.memory().numTensors;
    const ask = tg.send({ from: teacher, chat: group, text: '/retrain lenet-mnist epochs=1' });
    const queued = await answer(ask);
    expect(queued.text).toMatch(/^Задача (\d+): lenet-mnist, epochs=1\. Место в очереди: 1\./);
    const progressId = queued.messageId;
    // A photo sent while the job trains is answered as usual (by version 0).
    await tg.waitFor(() => tg.edits.some((e) => e.messageId === progressId), 60_000);
    const photo = tg.send({ from: student, chat: group, photo: await readImg('7.png') });
    const sentAt = Date.now();
    const reply = await answer(photo);
    const photoMs = Date.now() - sentAt;
    expect(reply.caption).toMatch(/^lenet-mnist: 7 /);
    expect(photoMs).toBeLessThan(5000);
    // The final text, then the learning curves under the progress message.
    await tg.waitFor(
      () => tg.sent.some((s) => s.method === 'sendPhoto' && s.replyTo === progressId),
      120_000,
    );
    const edits = tg.edits.filter((e) => e.messageId === progressId);
    // The start, any batch progress the reporter caught (a quiet machine trains the fixture's
    // epoch in about a second, faster than a poll), and the final text: one message, edited.
    expect(edits.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < edits.length; i++) {
      expect(edits[i]!.text).not.toBe(edits[i - 1]!.text);
    }
    // Every edit but the last is the job's progress line (start, then epoch and batch).
    for (const e of edits.slice(0, -1)) expect(e.text).toMatch(/^Задача \d+ \(lenet-mnist\): /);
    expect(edits.at(-1)!.text).toMatch(
      /^Задача \d+ готова: у lenet-mnist версии 1 точность на тесте .* Новая версия теперь отвечает\.$/,
    );
    const curves = tg.sent.find((s) => s.method === 'sendPhoto' && s.replyTo === progressId)!;
    expect(curves.caption).toMatch(/^lenet-mnist версия 1: кривые обучения/);
    expect(curves.photo?.subarray(1, 4).toString()).toBe('PNG');
    expect(spawned).toHaveLength(1);
    expect(spawned[0]).not.toBe(process.pid);
    // Every bot process switches within a poll, without leaking the old model's tensors.
    await vi.waitFor(() => expect(registry.servedVersion('lenet-mnist')).toBe('1'), {
      timeout: 5000,
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const rows = await db.submissions.listRecentByUser(
      (await db.users.findByPlatform('telegram', String(student.id)))!.id,
      5,
    );
    expect(rows.find((r) => r.platformMessageId === String(photo.message_id))?.modelVersion).toBe(
      '0',
    );
    const after = tg.send({ from: student, chat: group, photo: await readImg('7.png') });
    await answer(after);
    await vi.waitFor(async () => {
      const r = await db.submissions.listRecentByUser(
        (await db.users.findByPlatform('telegram', String(student.id)))!.id,
        1,
      );
      expect(r[0]?.modelVersion).toBe('1');
    });
  }, 180_000);

  it('/versions lists both; /rollback serves version 0 again', async () => {
    const list = tg.send({ from: teacher, chat: group, text: '/versions lenet-mnist' });
    const text = (await answer(list)).text ?? '';
    expect(text.split('\n')[0]).toBe('Версии lenet-mnist (▶ — текущая):');
    // version 0's author in words (not the stored 'shipped'), then its training parameters
    expect(text).toMatch(
      /^· v0 · точность 99[,.]\d+\s?% · [\d-]+ [\d:]+ · поставляется с ботом · epochs=20$/m,
    );
    // the teacher by the name they asked under (Irina), not telegram:201
    expect(text).toMatch(/^▶ v1 · точность .* · Irina · epochs=1$/m);
    const back = tg.send({ from: teacher, chat: group, text: '/rollback lenet-mnist' });
    expect((await answer(back)).text).toBe(
      'lenet-mnist: теперь отвечает версия 0 (была 1). Все процессы бота переключатся за несколько секунд.',
    );
    await vi.waitFor(() => expect(registry.servedVersion('lenet-mnist')).toBe('0'), {
      timeout: 5000,
    });
    const jobs = tg.send({ from: teacher, chat: group, text: '/jobs' });
    expect((await answer(jobs)).text).toMatch(
      /^#1 lenet-mnist · готово · v1 .* · запросил\(а\) Irina · 0:\d\d$/m,
    );
  });
});
