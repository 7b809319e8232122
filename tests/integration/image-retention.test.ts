/**
 * Issue 19 (and issue 15 item 8): refused uploads leave no file in the image store but keep their
 * hash, size and error code in the row; a per-user quota; retention with kept images. Runs on
 * SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPrismaPersistence } from '../../src/adapters/persistence/prisma-persistence.ts';
import type { Persistence } from '../../src/core/ports.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { blackPng } from '../fixtures/hostile-files.ts';
import { fakeContext, imageOf, makeCore, readImg } from '../unit/core/helpers.ts';
import {
  createTestDatabase,
  POSTGRES_SKIP_MESSAGE,
  PROVIDERS,
  type TestDatabase,
} from './db/helpers.ts';

const PDF = new TextEncoder().encode('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Every file under a folder, relative, `/`-separated. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

let seven: Buffer;
let three: Buffer;
const envs: ReturnType<typeof makeCore>[] = [];

beforeAll(async () => {
  await initBackend();
  seven = await readImg('7.png');
  three = await readImg('3.png');
});
afterAll(async () => {
  for (const env of envs) await env.registry.dispose();
});

for (const { provider, available } of PROVIDERS) {
  if (!available) {
    it.skip(POSTGRES_SKIP_MESSAGE, () => undefined);
    continue;
  }

  describe(`stored images on ${provider}`, () => {
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

    function coreOver(persistence: Persistence): ReturnType<typeof makeCore> {
      const env = makeCore({ overrides: { ...persistence } });
      envs.push(env);
      return env;
    }

    async function send(
      env: ReturnType<typeof makeCore>,
      bytes: Uint8Array,
      userId = 'u1',
    ): Promise<void> {
      const { ctx } = fakeContext({ image: imageOf(bytes), userId });
      await env.core.handle(ctx);
    }

    const rows = () =>
      testDb.query(
        'SELECT image_sha256, image_path, bytes, error_code, predicted_class FROM submissions ORDER BY id',
      );

    it('stores no refused upload, and keeps its hash, size and error code in the row', async () => {
      const env = coreOver(createPrismaPersistence(db));
      const strip = blackPng(1, 100_000);
      for (const bytes of [PDF, new Uint8Array(0), strip, seven]) await send(env, bytes);

      const relative = db.images.relativePathOf(sha(seven), 'png');
      expect(await filesUnder(path.join(testDb.config.DATA_DIR, 'images'))).toEqual([
        relative.replace(/^images\//, ''),
      ]);
      expect(await rows()).toEqual([
        {
          image_sha256: sha(PDF),
          image_path: null,
          bytes: PDF.length,
          error_code: 'image.pdf',
          predicted_class: null,
        },
        {
          image_sha256: sha(new Uint8Array(0)),
          image_path: null,
          bytes: 0,
          error_code: 'image.empty',
          predicted_class: null,
        },
        {
          image_sha256: sha(strip),
          image_path: null,
          bytes: strip.length,
          error_code: 'image.extreme_aspect',
          predicted_class: null,
        },
        {
          image_sha256: sha(seven),
          image_path: relative,
          bytes: seven.length,
          error_code: null,
          predicted_class: '7',
        },
      ]);
      // Photos are the bot user's alone: files 0600, folders 0700.
      const file = path.join(testDb.config.DATA_DIR, ...relative.split('/'));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(testDb.config.DATA_DIR, 'images'))).mode & 0o777).toBe(0o700);
    });

    it('answers a photo over its sender’s quota without keeping its bytes', async () => {
      const quota = Math.max(seven.length, three.length) + 10; // one photo, not two
      const env = coreOver(createPrismaPersistence(db, { imageQuotaBytes: quota }));
      await send(env, seven);
      await send(env, three); // over u1's quota
      await send(env, seven); // already stored: costs nothing
      await send(env, three, 'u2'); // another user's quota

      expect(
        (await rows()).map((r) => [r.image_sha256, r.image_path !== null, r.predicted_class]),
      ).toEqual([
        [sha(seven), true, '7'],
        [sha(three), false, '3'], // answered, bytes not kept
        [sha(seven), true, '7'],
        [sha(three), true, '3'], // u2's own quota
      ]);
      const u1 = await db.users.findByPlatform('web', 'u1');
      expect(await db.imageRetention.storedBytesOfUser(u1?.id ?? -1)).toBe(seven.length);
    });

    it('prunes expired photos except the kept ones, keeping their rows', async () => {
      const env = coreOver(createPrismaPersistence(db));
      await send(env, seven);
      await send(env, three);
      await send(env, seven);
      const images = path.join(testDb.config.DATA_DIR, 'images');
      expect(await filesUnder(images)).toHaveLength(2);

      // Nothing is 30 days old yet.
      expect(await db.imageRetention.prune({ olderThanDays: 30 })).toEqual({
        images: 0,
        bytes: 0,
        submissions: 0,
        kept: 0,
      });
      expect(await db.imageRetention.keep([sha(three)], 'review: mislabelled')).toBe(1);
      expect(await db.imageRetention.keep([sha(three)])).toBe(0);
      const later = new Date(Date.now() + 31 * 86_400_000);
      const dry = await db.imageRetention.prune({ olderThanDays: 30, now: later, dryRun: true });
      expect(dry).toEqual({ images: 1, bytes: seven.length, submissions: 2, kept: 1 });
      expect(await filesUnder(images)).toHaveLength(2);

      const done = await db.imageRetention.prune({ olderThanDays: 30, now: later });
      expect(done).toEqual(dry);
      expect(await filesUnder(images)).toEqual([
        db.images.relativePathOf(sha(three), 'png').replace(/^images\//, ''),
      ]);
      expect((await rows()).map((r) => [r.image_sha256, r.image_path === null])).toEqual([
        [sha(seven), true],
        [sha(three), false],
        [sha(seven), true],
      ]);

      expect(await db.imageRetention.release([sha(three)])).toBe(1);
      expect(await db.imageRetention.prune({ olderThanDays: 30, now: later })).toMatchObject({
        images: 1,
        kept: 0,
      });
      expect(await filesUnder(images)).toEqual([]);
    });
  });
}
