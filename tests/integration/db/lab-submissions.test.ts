import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import {
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  createTestDatabase,
  type TestDatabase,
} from './helpers.ts';

const RESULTS = [
  { kind: 'input_shape', ok: true, code: 'ok', params: { found: '32×32×3' } },
  { kind: 'functional_api', ok: false, code: 'sequential', params: {} },
];

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`lab submissions on ${provider}`, () => {
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

    it('records a check with its requirements, sets the accuracy later, and lists by user and task', async () => {
      const ann = await db.users.upsertFromPlatform({
        platform: 'telegram',
        platformId: '1',
        name: 'Ann',
      });
      const bob = await db.users.upsertFromPlatform({
        platform: 'telegram',
        platformId: '2',
        name: 'Bob',
      });
      const chat = await db.chats.upsertFromPlatform({
        platform: 'telegram',
        platformId: '-5',
        type: 'group',
      });
      const base = {
        fileSha256: 'a'.repeat(64),
        fileBytes: 1234,
        format: 'keras' as const,
        kerasVersion: '3.6.0',
        requirements: RESULTS,
        passed: 1,
        total: 2,
        params: 44_426,
        macs: 281_640,
        latencyMs: 812.4,
      };
      const first = await db.labSubmissions.record({
        ...base,
        userId: ann.id,
        chatId: chat.id,
        task: 'alexnet',
        fileName: 'a.keras',
      });
      await db.labSubmissions.record({
        ...base,
        userId: bob.id,
        task: 'lenet',
        format: 'h5',
        kerasVersion: undefined,
      });
      await db.labSubmissions.setTestAccuracy(first.id, 0.6712);

      const mine = await db.labSubmissions.listByUser(ann.id, 5);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        task: 'alexnet',
        chatId: chat.id,
        fileName: 'a.keras',
        format: 'keras',
        kerasVersion: '3.6.0',
        requirements: RESULTS,
        passed: 1,
        total: 2,
        params: 44_426,
        macs: 281_640,
        latencyMs: 812,
      });
      expect(mine[0]?.testAccuracy).toBeCloseTo(0.6712, 6);
      const lenet = await db.labSubmissions.listAll('lenet');
      expect(lenet.map((r) => [r.userName, r.format, r.kerasVersion, r.testAccuracy])).toEqual([
        ['Bob', 'h5', null, null],
      ]);
      expect((await db.labSubmissions.listAll()).map((r) => r.userPlatformId)).toEqual(['1', '2']);
    });

    it('refuses a format other than keras or h5', async () => {
      const ann = await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '1' });
      await expect(
        testDb.query(
          `INSERT INTO lab_submissions (user_id, task, file_sha256, file_bytes, format, requirements_json, passed, total, params, macs, latency_ms) VALUES (${ann.id}, 't', 'x', 1, 'pt', '[]', 0, 0, 0, 0, 0)`,
        ),
      ).rejects.toThrow(/CHECK|check/);
    });
  });
}
