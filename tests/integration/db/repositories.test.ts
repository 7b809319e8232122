import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { DatabaseError } from '../../../src/db/errors.ts';
import { SUBMISSION_CSV_COLUMNS } from '../../../src/db/submission-repository.ts';
import {
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  countOf,
  createTestDatabase,
  type TestDatabase,
} from './helpers.ts';

const TOP_K = [
  { classIndex: 7, label: '7', probability: 0.93 },
  { classIndex: 1, label: '1', probability: 0.05 },
];

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`repositories on ${provider}`, () => {
    let testDb: TestDatabase;
    let db: Database;

    beforeEach(async () => {
      testDb = await createTestDatabase(provider);
      db = await openDatabase(testDb.config);
    });

    afterEach(async () => {
      await db.close();
      await testDb.cleanup();
    });

    async function aUser(platformId = '1001') {
      return db.users.upsertFromPlatform({ platform: 'telegram', platformId, name: 'Ada' });
    }

    describe('users', () => {
      it('creates a user on first contact and updates the same row afterwards', async () => {
        const first = await db.users.upsertFromPlatform({
          platform: 'telegram',
          platformId: '1001',
          name: 'Ada',
          language: 'en',
        });
        const again = await db.users.upsertFromPlatform({
          platform: 'telegram',
          platformId: '1001',
          name: 'Ada L.',
          language: 'de',
        });

        expect(db.provider).toBe(provider);
        expect(again.id).toBe(first.id);
        expect(again).toMatchObject({ name: 'Ada L.', language: 'de', role: 'student' });
        const rows = await testDb.query('SELECT name, language, role FROM users');
        expect(rows).toEqual([{ name: 'Ada L.', language: 'de', role: 'student' }]);
      });

      it('keeps the same platform id on two platforms apart', async () => {
        await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '7' });
        await db.users.upsertFromPlatform({ platform: 'discord', platformId: '7' });

        expect(countOf(await testDb.query('SELECT COUNT(*) AS n FROM users'))).toBe(2);
      });

      it('rejects a second row with the same platform identity at the database level', async () => {
        await aUser();

        await expect(
          testDb.query(
            "INSERT INTO users (platform, platform_id, role, updated_at) VALUES ('telegram', '1001', 'student', CURRENT_TIMESTAMP)",
          ),
        ).rejects.toThrow(/unique/i);
      });

      it('creates one row when the first messages of a user arrive at once', async () => {
        const users = await Promise.all(
          Array.from({ length: 8 }, () =>
            db.users.upsertFromPlatform({ platform: 'discord', platformId: '555' }),
          ),
        );

        expect(new Set(users.map((u) => u.id)).size).toBe(1);
        expect(countOf(await testDb.query('SELECT COUNT(*) AS n FROM users'))).toBe(1);
      });

      it('keeps a language override across later platform updates until it is cleared', async () => {
        const user = await aUser();

        await db.users.setLanguageOverride(user.id, 'uk');
        const refreshed = await db.users.upsertFromPlatform({
          platform: 'telegram',
          platformId: '1001',
          language: 'en',
        });
        const cleared = await db.users.setLanguageOverride(user.id, null);

        expect(refreshed).toMatchObject({ language: 'en', languageOverride: 'uk', name: 'Ada' });
        expect(cleared.languageOverride).toBeNull();
        expect(await db.users.get(user.id)).toEqual(cleared);
      });

      it('changes roles and refuses unknown roles and users', async () => {
        const user = await aUser();

        const instructor = await db.users.setRole(user.id, 'instructor');

        expect(instructor.role).toBe('instructor');
        expect(await testDb.query('SELECT role FROM users')).toEqual([{ role: 'instructor' }]);
        await expect(db.users.setRole(user.id, 'root' as never)).rejects.toThrow(DatabaseError);
        await expect(db.users.setLanguageOverride(9999, 'de')).rejects.toMatchObject({
          code: 'not_found',
        });
        expect(await db.users.get(9999)).toBeUndefined();
        expect(await db.users.findByPlatform('telegram', '1001')).toMatchObject({ id: user.id });
      });
    });

    describe('chats', () => {
      it('upserts a chat by platform identity and refreshes its title', async () => {
        const chat = await db.chats.upsertFromPlatform({
          platform: 'telegram',
          platformId: '-100123',
          type: 'supergroup',
          title: 'CNN lab',
        });
        const renamed = await db.chats.upsertFromPlatform({
          platform: 'telegram',
          platformId: '-100123',
          type: 'supergroup',
          title: 'CNN lab 2',
        });

        expect(renamed.id).toBe(chat.id);
        expect(await testDb.query('SELECT type, title FROM chats')).toEqual([
          { type: 'supergroup', title: 'CNN lab 2' },
        ]);
        expect(await db.chats.findByPlatform('telegram', '-100123')).toEqual(renamed);
        expect(await db.chats.get(chat.id + 1)).toBeUndefined();
      });
    });

    describe('submissions', () => {
      it('records an answered photo with every field', async () => {
        const user = await aUser();
        const chat = await db.chats.upsertFromPlatform({
          platform: 'telegram',
          platformId: '1001',
          type: 'private',
        });
        const image = await db.images.put(Buffer.from('fake png bytes'), 'png');

        const saved = await db.submissions.recordSuccess({
          userId: user.id,
          chatId: chat.id,
          platformMessageId: '77',
          command: 'predict',
          image: {
            sha256: image.sha256,
            path: image.relativePath,
            bytes: image.bytes,
            width: 640,
            height: 480,
          },
          model: { id: 'lenet-mnist', version: '3' },
          predictedClass: '7',
          confidence: 0.93,
          topK: TOP_K,
          latencyMs: 41.6,
        });

        expect(saved).toMatchObject({
          userId: user.id,
          chatId: chat.id,
          imageSha256: image.sha256,
          imagePath: image.relativePath,
          topK: TOP_K,
          latencyMs: 42,
          errorCode: null,
        });
        const rows = await testDb.query(
          'SELECT platform_message_id, command, image_sha256, width, height, bytes, model_id, model_version, predicted_class, confidence, top_k_json, latency_ms, error_code FROM submissions',
        );
        expect(rows).toEqual([
          {
            platform_message_id: '77',
            command: 'predict',
            image_sha256: image.sha256,
            width: 640,
            height: 480,
            bytes: 14,
            model_id: 'lenet-mnist',
            model_version: '3',
            predicted_class: '7',
            confidence: 0.93,
            top_k_json: JSON.stringify(TOP_K),
            latency_ms: 42,
            error_code: null,
          },
        ]);
      });

      it('records a rejected photo with its error code and counts outcomes apart', async () => {
        const ada = await aUser('1');
        const bob = await aUser('2');
        const success = {
          command: 'predict',
          model: { id: 'lenet-mnist', version: '3' },
          predictedClass: '1',
          confidence: 0.5,
          topK: TOP_K,
        };

        await db.submissions.recordSuccess({ ...success, userId: ada.id });
        await db.submissions.recordSuccess({ ...success, userId: ada.id });
        const rejected = await db.submissions.recordRejection({
          userId: ada.id,
          command: 'predict',
          errorCode: 'image.pdf',
        });
        await db.submissions.recordRejection({
          userId: bob.id,
          command: 'predict',
          errorCode: 'image.empty',
        });

        expect(rejected).toMatchObject({
          errorCode: 'image.pdf',
          predictedClass: null,
          topK: null,
        });
        expect(await db.submissions.count()).toBe(4);
        expect(await db.submissions.count({ outcome: 'success' })).toBe(2);
        expect(await db.submissions.count({ outcome: 'rejected' })).toBe(2);
        expect(await db.submissions.count({ userId: ada.id })).toBe(3);
        expect(await db.submissions.count({ userId: bob.id, outcome: 'success' })).toBe(0);
        const codes = await testDb.query(
          'SELECT error_code FROM submissions WHERE error_code IS NOT NULL ORDER BY error_code',
        );
        expect(codes).toEqual([{ error_code: 'image.empty' }, { error_code: 'image.pdf' }]);
      });

      it("lists a user's last N submissions, newest first", async () => {
        const ada = await aUser('1');
        const bob = await aUser('2');
        for (let i = 0; i < 5; i++) {
          await db.submissions.recordRejection({
            userId: ada.id,
            command: `c${i}`,
            errorCode: 'image.no_ink',
          });
        }
        await db.submissions.recordRejection({
          userId: bob.id,
          command: 'other',
          errorCode: 'image.pdf',
        });

        const recent = await db.submissions.listRecentByUser(ada.id, 3);

        expect(recent.map((s) => s.command)).toEqual(['c4', 'c3', 'c2']);
        expect(await db.submissions.listRecentByUser(ada.id, 0)).toEqual([]);
      });

      it('refuses a submission of an unknown user', async () => {
        await expect(
          db.submissions.recordRejection({
            userId: 4242,
            command: 'predict',
            errorCode: 'image.pdf',
          }),
        ).rejects.toThrow();
        expect(countOf(await testDb.query('SELECT COUNT(*) AS n FROM submissions'))).toBe(0);
      });

      it('exports every submission as JSON lines and as CSV', async () => {
        const user = await db.users.upsertFromPlatform({
          platform: 'telegram',
          platformId: '1',
          name: '=HYPERLINK("x"), "Ada"',
        });
        await db.submissions.recordSuccess({
          userId: user.id,
          command: 'predict',
          model: { id: 'lenet-mnist', version: '3' },
          predictedClass: '7',
          confidence: 0.93,
          topK: TOP_K,
        });
        await db.submissions.recordRejection({
          userId: user.id,
          command: 'predict',
          errorCode: 'image.pdf',
        });

        const jsonLines: string[] = [];
        for await (const line of db.submissions.exportJsonLines()) jsonLines.push(line);
        const csv: string[] = [];
        for await (const line of db.submissions.exportCsv()) csv.push(line);

        const parsed = jsonLines.map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(parsed).toHaveLength(2);
        expect(parsed[0]).toMatchObject({
          userPlatform: 'telegram',
          userPlatformId: '1',
          predictedClass: '7',
          topK: TOP_K,
          errorCode: null,
        });
        expect(parsed[1]).toMatchObject({ errorCode: 'image.pdf', predictedClass: null });
        expect(csv).toHaveLength(3);
        expect(csv[0]).toBe(`${SUBMISSION_CSV_COLUMNS.join(',')}\r\n`);
        expect(csv[1]).toContain(`,"'=HYPERLINK(""x""), ""Ada""",`);
        expect(csv[2]).toMatch(/,image\.pdf\r\n$/);
      });

      it('exports more rows than one page in id order', async () => {
        const user = await aUser();
        for (let i = 0; i < 520; i++) {
          await db.submissions.recordRejection({
            userId: user.id,
            command: 'predict',
            errorCode: 'image.empty',
          });
        }

        const ids: number[] = [];
        for await (const line of db.submissions.exportJsonLines()) {
          ids.push((JSON.parse(line) as { id: number }).id);
        }

        expect(ids).toHaveLength(520);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
      });
    });

    describe('images', () => {
      it('stores identical bytes once, addressed by SHA-256', async () => {
        const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

        const first = await db.images.put(bytes, 'png');
        const second = await db.images.put(Buffer.from(bytes), 'png');

        expect(first.created).toBe(true);
        expect(second.created).toBe(false);
        expect(second.relativePath).toBe(first.relativePath);
        expect(first.relativePath).toBe(
          `images/${first.sha256.slice(0, 2)}/${first.sha256.slice(2, 4)}/${first.sha256}.png`,
        );
        const folder = path.dirname(first.absolutePath);
        expect(await readdir(folder)).toEqual([`${first.sha256}.png`]);
        expect(first.absolutePath.startsWith(path.resolve(testDb.config.DATA_DIR))).toBe(true);
      });
    });

    describe('model versions', () => {
      it('registers versions and keeps exactly one active per model', async () => {
        await db.modelVersions.register({
          modelId: 'lenet-mnist',
          version: '1',
          path: 'models/a',
          testAccuracy: 0.98,
        });
        await db.modelVersions.register({ modelId: 'lenet-mnist', version: '2', path: 'models/b' });
        await db.modelVersions.register({
          modelId: 'alexnet-cifar',
          version: '1',
          path: 'models/c',
        });

        await db.modelVersions.activate('lenet-mnist', '1');
        await db.modelVersions.activate('alexnet-cifar', '1');
        const active = await db.modelVersions.activate('lenet-mnist', '2');

        expect(active).toMatchObject({ version: '2', active: true });
        expect(await db.modelVersions.getActive('lenet-mnist')).toMatchObject({ version: '2' });
        const rows = await testDb.query(
          'SELECT model_id, version FROM served_models ORDER BY model_id',
        );
        expect(rows).toEqual([
          { model_id: 'alexnet-cifar', version: '1' },
          { model_id: 'lenet-mnist', version: '2' },
        ]);
        expect((await db.modelVersions.list('lenet-mnist')).map((v) => v.version)).toEqual([
          '1',
          '2',
        ]);
        expect(await db.modelVersions.list()).toHaveLength(3);
      });

      it('updates a version registered twice instead of adding a row', async () => {
        await db.modelVersions.register({ modelId: 'lenet-mnist', version: '1', path: 'old' });
        const again = await db.modelVersions.register({
          modelId: 'lenet-mnist',
          version: '1',
          path: 'new',
          testAccuracy: 0.991,
        });

        expect(again).toMatchObject({ path: 'new', testAccuracy: 0.991, active: false });
        expect(countOf(await testDb.query('SELECT COUNT(*) AS n FROM model_versions'))).toBe(1);
      });

      it('refuses to activate a version that was never registered', async () => {
        await expect(db.modelVersions.activate('lenet-mnist', '9')).rejects.toMatchObject({
          code: 'not_found',
        });
        expect(await db.modelVersions.getActive('lenet-mnist')).toBeUndefined();
      });
    });

    describe('labels (issue 16)', () => {
      it('adds label rows and lists submissions with them, by chat and message', async () => {
        const ada = await aUser();
        const prof = await aUser('2002');
        const chat = await db.chats.upsertFromPlatform({
          platform: 'telegram',
          platformId: '-100',
          type: 'supergroup',
        });
        const sub = await db.submissions.recordSuccess({
          userId: ada.id,
          chatId: chat.id,
          platformMessageId: '77',
          command: 'predict',
          image: { sha256: 'a'.repeat(64), path: `images/aa/aa/${'a'.repeat(64)}.png`, bytes: 9 },
          model: { id: 'lenet-mnist', version: 'v1' },
          predictedClass: '7',
          confidence: 0.6,
          topK: [],
        });
        await db.submissions.recordRejection({
          userId: ada.id,
          chatId: chat.id,
          command: 'predict',
          errorCode: 'image.pdf',
        });
        await db.labels.add({
          submissionId: sub.id,
          label: '1',
          userId: ada.id,
          role: 'student',
          source: 'corrected',
        });
        const excluded = await db.labels.add({
          submissionId: sub.id,
          label: null,
          userId: prof.id,
          role: 'instructor',
          source: 'instructor',
        });
        expect(excluded).toMatchObject({ label: null, userPlatformId: '2002' });
        await expect(
          db.labels.add({
            submissionId: sub.id,
            label: null,
            userId: ada.id,
            role: 'student',
            source: 'corrected',
          }),
        ).rejects.toMatchObject({ code: 'invalid_argument' });

        const byMessage = await db.labels.list({
          classifiedOnly: true,
          chatId: chat.id,
          platformMessageId: '77',
        });
        expect(byMessage).toHaveLength(1);
        expect(byMessage[0]!.labels.map((l) => [l.label, l.role, l.source])).toEqual([
          ['1', 'student', 'corrected'],
          [null, 'instructor', 'instructor'],
        ]);
        expect(byMessage[0]).toMatchObject({ chatPlatformId: '-100', userPlatformId: '1001' });
        expect(await db.labels.list({ chatId: chat.id })).toHaveLength(2);
        expect(await db.labels.list({ classifiedOnly: true })).toHaveLength(1);
        expect(await db.labels.findByImage('a'.repeat(64), 'predict')).toBe(sub.id);
        expect(await db.labels.findByImage('a'.repeat(64), 'import')).toBeUndefined();
      });

      it('stores a chat default model', async () => {
        const chat = await db.chats.upsertFromPlatform({
          platform: 'discord',
          platformId: '9',
          type: 'guild_text',
        });
        expect(chat.defaultModel).toBeNull();
        expect((await db.chats.setDefaultModel(chat.id, 'lenet-mnist')).defaultModel).toBe(
          'lenet-mnist',
        );
        expect(
          (
            await db.chats.upsertFromPlatform({
              platform: 'discord',
              platformId: '9',
              type: 'guild_text',
            })
          ).defaultModel,
        ).toBe('lenet-mnist');
      });
    });

    describe('training runs', () => {
      it('goes from queued to running to succeeded with params and metrics', async () => {
        const instructor = await aUser();
        const run = await db.trainingRuns.create({
          modelId: 'lenet-mnist',
          requestedBy: instructor.id,
          params: { epochs: 3, batchSize: 64, augment: true },
        });

        const running = await db.trainingRuns.markRunning(run.id);
        const done = await db.trainingRuns.markSucceeded(run.id, {
          testAccuracy: 0.991,
          loss: [0.3, 0.1],
        });

        expect(run).toMatchObject({ status: 'queued', startedAt: null, metrics: null });
        expect(running.status).toBe('running');
        expect(running.startedAt).toBeInstanceOf(Date);
        expect(done).toMatchObject({
          status: 'succeeded',
          requestedBy: instructor.id,
          params: { epochs: 3, batchSize: 64, augment: true },
          metrics: { testAccuracy: 0.991, loss: [0.3, 0.1] },
        });
        expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
        expect(await testDb.query('SELECT status, params_json FROM training_runs')).toEqual([
          { status: 'succeeded', params_json: '{"epochs":3,"batchSize":64,"augment":true}' },
        ]);
      });

      it('refuses to change a finished run and records failures', async () => {
        const run = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: {} });
        const other = await db.trainingRuns.create({ modelId: 'lenet-mnist', params: {} });

        await db.trainingRuns.markFailed(run.id, 'out of memory', { epoch: 2 });
        await db.trainingRuns.markCancelled(other.id);

        await expect(db.trainingRuns.markRunning(run.id)).rejects.toMatchObject({
          code: 'invalid_transition',
        });
        await expect(db.trainingRuns.markSucceeded(other.id, {})).rejects.toMatchObject({
          code: 'invalid_transition',
        });
        await expect(db.trainingRuns.markRunning(9999)).rejects.toMatchObject({
          code: 'not_found',
        });
        expect(await db.trainingRuns.get(run.id)).toMatchObject({
          status: 'failed',
          error: 'out of memory',
          metrics: { epoch: 2 },
          requestedBy: null,
        });
        const recent = await db.trainingRuns.listRecent(10, 'lenet-mnist');
        expect(recent.map((r) => r.id)).toEqual([other.id, run.id]);
      });
    });
  });
}
