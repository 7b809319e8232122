/**
 * issue 16: `labels import` of a folder in the image_dataset_from_directory layout, then the
 * fine-tuning data side: the class photos through the bot's preprocessing, and the refusal
 * naming the count needed when there are too few.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaPersistence } from '../../src/adapters/persistence/prisma-persistence.ts';
import { classPhotos } from '../../src/cli/commands/finetune-class.ts';
import { importLabelledFolder } from '../../src/cli/commands/labels.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { isUserError } from '../../src/errors.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import { buildClassDataset, finetuneOnClass } from '../../src/trainer/class-finetune.ts';
import type { LabelledImages } from '../../src/trainer/train.ts';
import { MODELS_DIR, readImg } from '../unit/core/helpers.ts';

let dir: string;
let db: Database;
let registry: ModelRegistry;
const limits = { maxBytes: 20_000_000, maxPixels: 40_000_000 };

beforeAll(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(os.tmpdir(), 'classdata-cli-'));
  db = await openDatabase({ DATA_DIR: path.join(dir, 'data') });
  registry = new ModelRegistry(MODELS_DIR);
  // The shipped example digits, as two "students" (file name prefixes), one folder per label.
  for (const d of '0123456789') {
    await mkdir(path.join(dir, 'class', d), { recursive: true });
    await writeFile(
      path.join(dir, 'class', d, `${Number(d) % 2 ? 'ann' : 'bob'}_${d}.png`),
      await readImg(`${d}.png`),
    );
  }
  await writeFile(path.join(dir, 'class', '3', 'notes.txt'), 'not a photo');
});

afterAll(async () => {
  await db?.close();
  await registry?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('labels import and the class data set', () => {
  it('imports each photo once as an instructor label, with the student from the file name', async () => {
    const loaded = await registry.get('lenet-mnist');
    const options = { studentPattern: /^([a-z]+)_/, limits };
    const first = await importLabelledFolder(db, loaded, path.join(dir, 'class'), options);
    expect(first).toMatchObject({
      imported: 10,
      duplicates: 0,
      refused: [],
      ignored: ['3/notes.txt'],
    });
    const again = await importLabelledFolder(db, loaded, path.join(dir, 'class'), options);
    expect(again).toMatchObject({ imported: 0, duplicates: 10 });
    const rows = await db.labels.list();
    expect(rows).toHaveLength(10);
    expect(rows.map((r) => r.userPlatformId).sort()).toEqual([
      ...Array<string>(5).fill('ann'),
      ...Array<string>(5).fill('bob'),
    ]);
    for (const r of rows) {
      expect(r.command).toBe('import');
      expect(r.labels).toEqual([
        expect.objectContaining({ role: 'instructor', source: 'instructor', userId: null }),
      ]);
      expect(r.labels[0]!.label).toBe(r.platformMessageId!.slice(0, 1));
      expect(r.predictedClass).toMatch(/^\d$/);
    }
    // The model version recorded is the one that classified them: the shipped 0 by default.
    expect(new Set(rows.map((r) => `${r.modelId}@${r.modelVersion}`))).toEqual(
      new Set(['lenet-mnist@0']),
    );
  });

  it('leaves out a photo whose stored file cannot be read, and says which', async () => {
    const loaded = await registry.get('lenet-mnist');
    const data = createPrismaPersistence(db).classData;
    const rows = await data.list();
    const victim = rows.find((r) => r.imagePath !== null)!;
    const broken: typeof data = Object.assign(Object.create(data) as typeof data, {
      readImage: (p: string) =>
        p === victim.imagePath ? Promise.reject(new Error('ENOENT: gone')) : data.readImage(p),
    });
    const unreadable: string[] = [];
    const photos = await classPhotos(broken, loaded.meta.classNames, (id) => unreadable.push(id));
    expect(unreadable).toEqual([victim.id]);
    expect(photos).toHaveLength(9);
    expect(photos.map((p) => p.id)).not.toContain(victim.id);
  });

  it('preprocesses the photos as the bot does, and refuses too few with the count needed', async () => {
    const loaded = await registry.get('lenet-mnist');
    const photos = await classPhotos(createPrismaPersistence(db).classData, loaded.meta.classNames);
    expect(photos.map((p) => p.label).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const set = await buildClassDataset(photos, loaded.meta, limits);
    expect(set.data.count).toBe(10);
    expect(set.data.images).toHaveLength(10 * 28 * 28);
    expect(new Set(set.students)).toEqual(new Set(['import:ann', 'import:bob']));
    const empty: LabelledImages = {
      images: new Uint8Array(0),
      labels: new Uint8Array(0),
      count: 0,
      height: 28,
      width: 28,
      channels: 1,
    };
    const refusal = await finetuneOnClass(loaded.model, set, empty, empty, { minPhotos: 50 }).catch(
      (e: unknown) => e,
    );
    expect(isUserError(refusal)).toBe(true);
    expect(refusal).toMatchObject({
      id: 'classdata.not_enough',
      params: { count: 10, needed: 50, missing: 40 },
    });
  });
});
