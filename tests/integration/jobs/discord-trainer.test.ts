/**
 * The trainer end to end over Discord: the real core, discord.js against the fake Discord (REST
 * and gateway), SQLite, the embedded worker running each job in a child process on the banded
 * MNIST fixture, the progress reporter and the served-version watcher. The interaction's token is
 * made to expire right after the `/retrain` answer (Discord: 15 minutes), so every progress edit
 * must go through `PATCH /channels/{channel}/messages/{message}` with the bot token.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDiscord } from '../../../src/adapters/discord/start.ts';
import type { RunningAdapter } from '../../../src/adapters/index.ts';
import { loadConfig } from '../../../src/config.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { startTrainerRuntime, type TrainerRuntime } from '../../../src/jobs/trainer-runtime.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { ModelRegistry } from '../../../src/ml/registry.ts';
import { writeBandedIdx } from '../../fixtures/datasets/banded-idx.ts';
import { FIXTURE_SPEC, trainerCore } from './trainer-fixture.ts';
import {
  startFakeDiscord,
  STUDENT,
  type FakeDiscord,
  type FakeUser,
  type SlashCommandInvocation,
} from '../../fakes/discord-server.ts';
import { MODELS_DIR, readImg } from '../../unit/core/helpers.ts';

const TOKEN = 'MTAwMDE0.fake-discord-token.dHJhaW5lcg';
const ADMIN: FakeUser = { id: '300000000000000100', username: 'root', global_name: 'Admin' };
const TEACHER: FakeUser = { id: '300000000000000201', username: 'irina', global_name: 'Irina' };

let discord: FakeDiscord;
let adapter: RunningAdapter;
let db: Database;
let registry: ModelRegistry;
let trainer: TrainerRuntime;
let root: string;
const spawned: number[] = [];

/** Sends a slash command; resolves with its token and the text of its (first) answer. */
async function command(
  inv: SlashCommandInvocation,
  // Generous: the first commands of a cold process on a shared 2-core machine can be slow.
  timeoutMs = 60_000,
): Promise<{ token: string; text: string }> {
  const { token } = discord.slashCommand(inv);
  const edit = await discord.waitForRequest(
    (r) => r.method === 'PATCH' && r.route.includes(`/${token}/messages/`),
    timeoutMs,
  );
  return { token, text: (edit.body as { content: string }).content };
}

const jobOf = (text: string): number => Number(/^Job (\d+)/.exec(text)?.[1]);

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(path.join(os.tmpdir(), 'dc-trainer-'));
  const dataDir = path.join(root, 'data');
  await writeBandedIdx(dataDir, 'mnist', { train: 1200, test: 100 });
  discord = await startFakeDiscord({ token: TOKEN, heartbeatIntervalMs: 300 });
  db = await openDatabase({ DATA_DIR: dataDir });
  registry = new ModelRegistry(MODELS_DIR);
  await registry.get('lenet-mnist');
  const logger = pino({ level: 'silent' });
  const config = loadConfig({
    DATA_DIR: dataDir,
    MODELS_DIR,
    DISCORD_TOKEN: TOKEN,
    DISCORD_APPLICATION_ID: discord.applicationId,
    DISCORD_API_ROOT: `${discord.apiRoot}/`,
    ADMINS: `discord:${ADMIN.id}`,
    DEFAULT_MODEL: 'lenet-mnist',
  });
  trainer = await startTrainerRuntime(config, db, registry, logger, {
    specDefaults: FIXTURE_SPEC,
    pollMs: 200,
    minEditMs: 400,
    onSpawn: (_job, pid) => spawned.push(pid),
  });
  const core = trainerCore(config, db, registry, trainer, logger);
  adapter = await startDiscord(config, core, logger);
  trainer.startReporter(adapter.messenger ? [adapter.messenger] : []);
});

afterAll(async () => {
  await adapter?.stop();
  await trainer?.close();
  await discord?.close();
  await registry?.dispose();
  await db?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('retraining from Discord', () => {
  it(
    'an admin grants the instructor role by mention; a student is refused /retrain',
    {
      timeout: 150_000,
    },
    async () => {
      const grant = await command({
        name: 'grant',
        user: ADMIN,
        strings: { user: `<@${TEACHER.id}>`, role: 'instructor' },
      });
      expect(grant.text).toBe(`${TEACHER.id} is now an instructor.`);
      expect(await db.users.findByPlatform('discord', TEACHER.id)).toMatchObject({
        role: 'instructor',
      });
      const refused = await command({
        name: 'retrain',
        user: STUDENT,
        strings: { model: 'lenet-mnist', params: 'epochs=1' },
      });
      expect(refused.text).toMatch(/^Sorry, \/retrain is for instructors only/);
      expect(await db.trainingRuns.listForDisplay(10)).toEqual([]);
    },
  );

  it("runs the instructor's /retrain in a child process and edits one message with the bot token after the interaction expired", async () => {
    const tensorsBefore = tf.memory().numTensors;
    const ask = await command({
      name: 'retrain',
      user: TEACHER,
      locale: 'en-US',
      strings: { model: 'lenet-mnist', params: 'epochs=1' },
    });
    expect(ask.text).toMatch(/^Job (\d+): lenet-mnist, epochs=1\. Place in the queue: 1\./);
    const job = jobOf(ask.text);
    const messageId = discord.originalOf(ask.token)!;
    expect(messageId).toMatch(/^\d+$/);
    // Discord: the interaction's token is dead after 15 minutes; a long job outlives it.
    discord.expireInteraction(ask.token);
    // A photo sent while the job trains is answered as usual (by version 0).
    await vi.waitFor(
      () => expect(discord.edits.some((e) => e.messageId === messageId)).toBe(true),
      {
        timeout: 60_000,
        interval: 50,
      },
    );
    const sentAt = Date.now();
    const photo = await command({
      name: 'predict',
      user: STUDENT,
      attachments: { image: discord.hostFile('7.png', await readImg('7.png'), 'image/png') },
    });
    expect(photo.text).toMatch(/^lenet-mnist: 7 /);
    expect(Date.now() - sentAt).toBeLessThan(5000);
    await vi.waitFor(
      async () => expect((await db.trainingRuns.get(job))?.status).toBe('succeeded'),
      { timeout: 120_000, interval: 200 },
    );
    // The learning curves come as a reply to the progress message, after the final edit.
    const curves = await discord.waitForRequest(
      (r) =>
        r.method === 'POST' &&
        r.route === `/channels/${discord.channelId}/messages` &&
        (r.body as { message_reference?: { message_id?: string } }).message_reference
          ?.message_id === messageId,
      30_000,
    );
    expect(curves.authorization).toBe(`Bot ${TOKEN}`);
    expect((curves.body as { content: string }).content).toBe(
      `lenet-mnist version 1: learning curves (job ${job})`,
    );
    expect(curves.files[0]?.name).toBe('learning-curves.png');
    expect(Buffer.from(curves.files[0]!.bytes.subarray(1, 4)).toString()).toBe('PNG');

    const edits = discord.edits.filter((e) => e.messageId === messageId);
    expect(edits.length).toBeGreaterThanOrEqual(2);
    expect(edits.every((e) => e.via === 'channel')).toBe(true);
    const patches = discord.requests.filter(
      (r) =>
        r.method === 'PATCH' && r.route === `/channels/${discord.channelId}/messages/${messageId}`,
    );
    expect(patches.length).toBe(edits.length);
    expect(patches.every((r) => r.authorization === `Bot ${TOKEN}` && r.status === 200)).toBe(true);
    // No edit went through the expired interaction token.
    expect(
      discord.requests.filter((r) => r.route.includes(`/${ask.token}/`) && r.status === 401),
    ).toEqual([]);
    for (let i = 1; i < edits.length; i++) {
      expect(edits[i]!.content).not.toBe(edits[i - 1]!.content);
    }
    for (const e of edits.slice(0, -1)) {
      expect(e.content).toMatch(new RegExp(`^Job ${job} \\(lenet-mnist\\): (starting|epoch 1/1)`));
    }
    expect(edits.at(-1)!.content).toMatch(
      new RegExp(
        `^Job ${job} done: lenet-mnist version 1 has test accuracy [\\d.]+\\s?% against [\\d.]+\\s?% for the served version 0\\. Promoted: it answers from now on\\.$`,
      ),
    );
    expect(discord.botMessage(messageId)?.content).toBe(edits.at(-1)!.content);
    expect(spawned).toHaveLength(1);
    expect(spawned[0]).not.toBe(process.pid);
    await vi.waitFor(() => expect(registry.servedVersion('lenet-mnist')).toBe('1'), {
      timeout: 5000,
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(discord.unknownRoutes).toEqual([]);
  }, 180_000);

  it('/versions lists both; /rollback serves version 0 again', async () => {
    const list = await command({
      name: 'versions',
      user: TEACHER,
      strings: { model: 'lenet-mnist' },
    });
    expect(list.text.split('\n')[0]).toBe('Versions of lenet-mnist (▶ served):');
    // version 0's author in words, then its recorded training parameters
    expect(list.text).toMatch(
      /^· v0 · accuracy 99\.\d+\s?% · [\d-]+ [\d:]+ · shipped with the bot · epochs=20$/m,
    );
    // the teacher by their display name (global_name), not discord:<id>
    expect(list.text).toMatch(/^▶ v1 · accuracy .* · Irina · epochs=1$/m);
    expect(list.text).not.toContain(TEACHER.id);
    const back = await command({
      name: 'rollback',
      user: TEACHER,
      strings: { model: 'lenet-mnist' },
    });
    expect(back.text).toBe(
      'lenet-mnist: version 0 is served now (was 1). Every bot process switches within seconds.',
    );
    await vi.waitFor(() => expect(registry.servedVersion('lenet-mnist')).toBe('0'), {
      timeout: 5000,
    });
    expect((await db.modelVersions.served()).get('lenet-mnist')).toBe('0');
  });

  it('/cancel stops a running job within seconds; the served version stays', async () => {
    const ask = await command({
      name: 'retrain',
      user: TEACHER,
      strings: { model: 'lenet-mnist', params: 'epochs=30' },
    });
    const job = jobOf(ask.text);
    const messageId = discord.originalOf(ask.token)!;
    await vi.waitFor(
      async () => {
        const run = await db.trainingRuns.get(job);
        if (run?.status !== 'running' || !run.progress) throw new Error('not training yet');
      },
      { timeout: 60_000, interval: 100 },
    );
    const asked = Date.now();
    const cancel = await command({ name: 'cancel', user: TEACHER, strings: { job: String(job) } });
    expect(cancel.text).toBe(`Job ${job} is cancelled.`);
    await vi.waitFor(
      async () => expect((await db.trainingRuns.get(job))?.status).toBe('cancelled'),
      { timeout: 10_000, interval: 100 },
    );
    expect(Date.now() - asked).toBeLessThan(5000);
    await vi.waitFor(() => expect(() => process.kill(spawned.at(-1)!, 0)).toThrow(), {
      timeout: 3000,
      interval: 50,
    });
    await vi.waitFor(
      () =>
        expect(discord.botMessage(messageId)?.content).toBe(
          `Job ${job} (lenet-mnist) was cancelled. The served model is unchanged.`,
        ),
      { timeout: 5000 },
    );
    expect((await db.modelVersions.served()).get('lenet-mnist')).toBe('0');
    expect(registry.servedVersion('lenet-mnist')).toBe('0');
  }, 120_000);
});
