/**
 * issue 16: `finetune-class`: fine-tunes the served digit model on the class's labelled photos
 * (the data side of `/retrain lenet-mnist with=class`; see `src/trainer/class-finetune.ts`).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { createPrismaPersistence } from '../../adapters/persistence/prisma-persistence.ts';
import type { Config } from '../../config.ts';
import { openDatabase } from '../../db/database.ts';
import { classPhotos } from '../../jobs/class-photos.ts';
import { initBackend } from '../../ml/backend.ts';
import { loadModel, saveModel } from '../../ml/model-io.ts';
import { META_FILE, readModelMeta, type ModelMeta } from '../../ml/model-meta.ts';
import {
  buildClassDataset,
  finetuneOnClass,
  studentFolds,
  type ClassFinetuneReport,
  type ClassPhoto,
} from '../../trainer/class-finetune.ts';
import { loadDataset } from '../../trainer/datasets/load.ts';
import { parseCountOption, parsePositiveNumberOption, parseShareOption } from '../options.ts';

export { classPhotos };

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** The report as the lines a person reads. */
export function describeReport(r: ClassFinetuneReport): string[] {
  return [
    `class photos: ${r.photos} from ${r.students} students (${r.trainPhotos} training, ${r.heldOutPhotos} held out from ${r.heldOutStudents.length} students: ${r.heldOutStudents.join(', ')}); ${r.skipped.length} refused by the preprocessing`,
    `held-out class photos: ${pct(r.before.classHeldOut)} -> ${pct(r.after.classHeldOut)}`,
    `MNIST test:            ${pct(r.before.mnistTest)} -> ${pct(r.after.mnistTest)}`,
    `decision: ${r.promote ? 'promote' : 'keep the served model'} (${r.reason}; promotion needs the class accuracy to improve and MNIST to drop at most ${(100 * r.settings.maxMnistDrop).toFixed(1)} points)`,
  ];
}

/** Cross-validation folds pooled: held-out photos over all folds, MNIST averaged. */
export interface PooledFolds {
  readonly folds: number;
  readonly heldOutPhotos: number;
  readonly classBefore: number;
  readonly classAfter: number;
  readonly mnistBefore: number;
  readonly mnistAfterMean: number;
  readonly mnistAfterMin: number;
}

/** Pools fold reports (every photo is held out once). */
export function poolFolds(reports: readonly ClassFinetuneReport[]): PooledFolds {
  const photos = reports.reduce((n, r) => n + r.heldOutPhotos, 0);
  const sum = (f: (r: ClassFinetuneReport) => number): number =>
    reports.reduce((n, r) => n + f(r), 0);
  return {
    folds: reports.length,
    heldOutPhotos: photos,
    classBefore: sum((r) => r.heldOutCorrect.before) / photos,
    classAfter: sum((r) => r.heldOutCorrect.after) / photos,
    mnistBefore: reports[0]?.before.mnistTest ?? NaN,
    mnistAfterMean: sum((r) => r.after.mnistTest) / reports.length,
    mnistAfterMin: Math.min(...reports.map((r) => r.after.mnistTest)),
  };
}

function describePooled(p: PooledFolds): string {
  return [
    `pooled over ${p.folds} folds by student (${p.heldOutPhotos} held-out photos, each once):`,
    `held-out class photos: ${pct(p.classBefore)} -> ${pct(p.classAfter)}`,
    `MNIST test:            ${pct(p.mnistBefore)} -> ${pct(p.mnistAfterMean)} (mean; worst fold ${pct(p.mnistAfterMin)})`,
  ].join('\n');
}

function settingsOf(flags: Flags) {
  return {
    minPhotos: flags.minPhotos,
    heldOutShare: flags.heldOut,
    seed: flags.seed,
    ...(flags.epochs === undefined ? {} : { epochs: flags.epochs }),
    ...(flags.lr === undefined ? {} : { learningRate: flags.lr }),
    ...(flags.replay === undefined ? {} : { replay: flags.replay }),
  };
}

interface Flags {
  model: string;
  minPhotos: number;
  epochs?: number;
  lr?: number;
  replay?: number;
  heldOut: number;
  seed: number;
  mnistDir?: string;
  out?: string;
  folds?: number;
  json?: boolean;
}

/** Registers `finetune-class`. */
export function registerFinetuneClass(program: Command, config: Config): void {
  program
    .command('finetune-class')
    .description(
      "fine-tune the digit model on the class's labelled photos with MNIST replay; reports held-out (by student) and MNIST accuracy before and after",
    )
    .option('--model <id>', 'the served digit model', 'lenet-mnist')
    .option('--min-photos <n>', 'refuse with fewer usable labelled photos', parseCountOption, 50)
    .option('--epochs <n>', 'epochs (default 4)', parseCountOption)
    .option('--lr <x>', 'learning rate (default 3e-4)', parsePositiveNumberOption)
    .option('--replay <n>', 'MNIST training images mixed in (default 6000)', parseCountOption)
    .option('--held-out <share>', 'share of photos held out, by student', parseShareOption, 0.25)
    .option('--seed <n>', 'random seed (split, replay, augmentation)', parseCountOption, 1)
    .option('--mnist-dir <dir>', 'data folder holding mnist/ (default: DATA_DIR)')
    .option('--out <dir>', 'save the fine-tuned model (with the report in meta.json) here')
    .option(
      '--folds <k>',
      'measure only: cross-validate by student (each student held out once, k fine-tunes from the served model)',
      parseCountOption,
    )
    .option('--json', 'print the report as JSON')
    .action(async (flags: Flags) => {
      const backend = await initBackend();
      const modelDir = path.join(config.MODELS_DIR, flags.model);
      const meta: ModelMeta = await readModelMeta(modelDir);
      const db = await openDatabase(config);
      let photos: ClassPhoto[];
      try {
        photos = await classPhotos(createPrismaPersistence(db).classData, meta.classNames);
      } finally {
        await db.close();
      }
      const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
      const classSet = await buildClassDataset(photos, meta, limits);
      const dataDir = flags.mnistDir ?? config.DATA_DIR;
      const [mnistTrain, mnistTest] = await Promise.all([
        loadDataset('mnist', 'train', dataDir),
        loadDataset('mnist', 'test', dataDir),
      ]);
      if (flags.folds !== undefined) {
        const folds = studentFolds(classSet.students, flags.folds, flags.seed);
        const reports: ClassFinetuneReport[] = [];
        for (const [i, heldOutStudents] of folds.entries()) {
          const m = await loadModel(modelDir);
          const r = await finetuneOnClass(m, classSet, mnistTrain, mnistTest, {
            ...settingsOf(flags),
            heldOutStudents,
          });
          m.dispose();
          reports.push(r);
          if (!flags.json) console.log(`fold ${i + 1}/${folds.length}: ${describeReport(r)[1]}`);
        }
        const pooled = poolFolds(reports);
        if (flags.json) console.log(JSON.stringify({ pooled, folds: reports }, null, 2));
        else console.log(describePooled(pooled));
        return;
      }
      const model = await loadModel(modelDir);
      const bar = flags.json
        ? undefined
        : new SingleBar(
            {
              format: 'epoch {epoch} |{bar}| {value}/{total} batches | loss {loss}',
              hideCursor: true,
            },
            Presets.shades_classic,
          );
      const report = await finetuneOnClass(model, classSet, mnistTrain, mnistTest, {
        ...settingsOf(flags),
        onProgress: (p) => {
          if (!bar) return;
          if (p.kind === 'epoch-start')
            bar.start(p.batches, 0, { epoch: `${p.epoch + 1}/${p.epochs}`, loss: '-' });
          else if (p.kind === 'batch') bar.update(p.batch, { loss: p.loss.toFixed(4) });
          else bar.stop();
        },
      });
      if (flags.out) {
        const parent = JSON.parse(await readFile(path.join(modelDir, META_FILE), 'utf8')) as object;
        const outMeta = {
          ...parent,
          id: path.basename(path.resolve(flags.out)),
          testAccuracy: report.after.mnistTest,
          classFinetune: {
            parent: { id: meta.id, version: meta.training?.date ?? 'unknown' },
            backend: backend.name,
            date: new Date().toISOString(),
            ...report,
          },
        };
        await saveModel(model, flags.out, { [META_FILE]: `${JSON.stringify(outMeta, null, 2)}\n` });
      }
      model.dispose();
      if (flags.json) console.log(JSON.stringify(report, null, 2));
      else for (const line of describeReport(report)) console.log(line);
    });
}
