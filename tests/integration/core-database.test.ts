import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createPrismaPersistence } from '../../src/adapters/persistence/prisma-persistence.ts';
import { createCore } from '../../src/core/dispatcher.ts';
import { buildCoreServices } from '../../src/core/services.ts';
import { openDatabase } from '../../src/db/database.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import { fakeContext, imageOf, MODELS_DIR, readImg } from '../unit/core/helpers.ts';
import { createTestDatabase, POSTGRES_SKIP_MESSAGE, PROVIDERS } from './db/helpers.ts';

for (const { provider, available } of PROVIDERS) {
  describe.skipIf(!available)(`the chat core over the ${provider} database`, () => {
    it('logs a classified photo, a refused PDF and a /lang choice as real rows', async () => {
      const tdb = await createTestDatabase(provider);
      const db = await openDatabase(tdb.config);
      const registry = new ModelRegistry(MODELS_DIR);
      try {
        const core = createCore(
          buildCoreServices({
            config: {
              MAX_IMAGE_BYTES: 2_000_000,
              MAX_IMAGE_PIXELS: 40_000_000,
              DEFAULT_MODEL: 'lenet-mnist',
            },
            registry,
            persistence: createPrismaPersistence(db),
            logger: pino({ level: 'silent' }),
          }),
          { rateLimit: false },
        );
        const seven = await readImg('7.png');
        const photo = fakeContext({ platform: 'telegram', userId: '1001', image: imageOf(seven) });
        await core.handle(photo.ctx);
        expect(photo.out.images[0]!.caption).toContain('7');

        const pdf = fakeContext({
          platform: 'telegram',
          userId: '1001',
          text: '/predict',
          image: imageOf(new TextEncoder().encode('%PDF-1.5\n')),
        });
        await core.handle(pdf.ctx);
        const lang = fakeContext({ platform: 'telegram', userId: '1001', text: '/lang ru' });
        await core.handle(lang.ctx);

        const rows = await tdb.query(
          'SELECT command, predicted_class, error_code, image_sha256, bytes FROM submissions ORDER BY id',
        );
        expect(rows).toHaveLength(2);
        expect(rows[0]).toMatchObject({
          command: 'predict',
          predicted_class: '7',
          error_code: null,
        });
        expect(rows[0]!.image_sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(Number(rows[0]!.bytes)).toBe(seven.length);
        expect(rows[1]).toMatchObject({ error_code: 'image.pdf' });
        const users = await tdb.query('SELECT platform, platform_id, language_override FROM users');
        expect(users).toEqual([
          { platform: 'telegram', platform_id: '1001', language_override: 'ru' },
        ]);
        const stored = await db.images.read(String(rows[0]!.image_sha256), 'png');
        expect(stored?.equals(seven)).toBe(true);

        const history = fakeContext({ platform: 'telegram', userId: '1001', text: '/history' });
        await core.handle(history.ctx);
        expect(history.out.texts.join('\n')).toContain('7');
        await core.close();
      } finally {
        await registry.dispose();
        await db.close();
        await tdb.cleanup();
      }
    }, 60_000);
  });
}

if (!PROVIDERS[1]!.available) it.skip(POSTGRES_SKIP_MESSAGE, () => {});
