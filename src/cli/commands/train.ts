import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { logger } from '../../logger.ts';
import { initBackend } from '../../ml/backend.ts';
import { saveModel } from '../../ml/model-io.ts';
import { META_FILE, readModelMeta, type ModelMeta } from '../../ml/model-meta.ts';
import { loadDataset } from '../../trainer/datasets/load.ts';
import { calibrateOod } from '../../trainer/calibrate-ood.ts';
import { renderLearningCurves } from '../../imaging/curves.ts';
import { loadCheckpoint, saveCheckpoint } from '../../trainer/checkpoint.ts';
import { RECIPES, SCHEDULES, type ScheduleName } from '../../trainer/recipes.ts';
import { evaluateClassifier, trainClassifier } from '../../trainer/train.ts';
import { parseIntOption, parseNumberOption } from '../options.ts';

/** Where `train` keeps its per-epoch checkpoints unless told otherwise (git-ignored). */
export const DEFAULT_CHECKPOINT_DIR = 'checkpoints';

interface TrainFlags {
  epochs?: number;
  batch?: number;
  lr?: number;
  schedule?: string;
  patience?: number;
  seed: number;
  validationSplit?: number;
  checkpointDir: string;
  resume: boolean;
  augment: boolean;
  outliers: boolean;
  dataDir?: string;
  out?: string;
  force: boolean;
}

/** `train <model>`: trains a shipped model from scratch on its full data set. */
export function registerTrain(program: Command, config: Config): void {
  program
    .command('train')
    .description(`train a model on its full data set (${Object.keys(RECIPES).join(', ')})`)
    .argument('<model>', 'model id')
    .option('--epochs <n>', 'epochs', parseIntOption)
    .option('--batch <n>', 'batch size', parseIntOption)
    .option('--lr <rate>', 'base learning rate (Adam)', parseNumberOption)
    .option(
      '--schedule <name>',
      `learning-rate schedule: ${Object.keys(SCHEDULES).join(', ')} (default: the model's)`,
    )
    .option(
      '--patience <epochs>',
      'early stopping: stop after this many epochs without a better validation accuracy and keep the best epoch (0: off)',
      parseIntOption,
    )
    .option('--seed <n>', 'random seed', parseIntOption, 42)
    .option('--validation-split <share>', 'share held out for validation', parseNumberOption)
    .option(
      '--checkpoint-dir <dir>',
      'folder for per-epoch checkpoints (<dir>/<model>)',
      DEFAULT_CHECKPOINT_DIR,
    )
    .option('--no-resume', 'start afresh even when a checkpoint of the same settings exists')
    .option('--no-augment', 'train on the images as they are')
    .option(
      '--no-outliers',
      'train without Outlier Exposure (non-digit images with a uniform target)',
    )
    .option('--data-dir <dir>', 'data folder', undefined)
    .option('--out <dir>', 'models folder to write to', undefined)
    .option('--force', 'replace the existing model even when its test accuracy is higher', false)
    .action(async (id: string, flags: TrainFlags) => {
      const recipe = RECIPES[id];
      if (!recipe)
        throw new Error(`unknown model "${id}"; trainable: ${Object.keys(RECIPES).join(', ')}`);
      const schedule = flags.schedule ?? recipe.defaults.schedule;
      if (!(schedule in SCHEDULES)) {
        throw new Error(
          `unknown schedule "${schedule}"; known: ${Object.keys(SCHEDULES).join(', ')}`,
        );
      }
      const scheduleFn = SCHEDULES[schedule as ScheduleName];
      const backend = await initBackend();
      const dataDir = flags.dataDir ?? config.DATA_DIR;
      const train = await loadDataset(recipe.dataset, 'train', dataDir);
      const test = await loadDataset(recipe.dataset, 'test', dataDir);
      const epochs = flags.epochs ?? recipe.defaults.epochs;
      const batchSize = flags.batch ?? recipe.defaults.batchSize;
      const lr = flags.lr ?? recipe.defaults.learningRate;
      const patience = flags.patience ?? recipe.defaults.patience ?? 0;
      const validationSplit = flags.validationSplit ?? recipe.defaults.validationSplit;
      const augment = flags.augment && recipe.augment !== undefined;
      const withOutliers = flags.outliers && recipe.outliers !== undefined;
      const command = [
        `bin/cnn-classroom train ${id} --epochs ${epochs} --batch ${batchSize} --lr ${lr}`,
        `--schedule ${schedule} --patience ${patience} --seed ${flags.seed}`,
        `--validation-split ${validationSplit}`,
        augment || !recipe.augment ? '' : '--no-augment',
        withOutliers || !recipe.outliers ? '' : '--no-outliers',
      ]
        .filter(Boolean)
        .join(' ');
      // The settings a checkpoint must share to be resumed (the command without its folders).
      const fingerprint = command;
      const checkpointDir = path.join(flags.checkpointDir, id);
      const resume = flags.resume ? await loadCheckpoint(checkpointDir, fingerprint) : undefined;
      if (resume) {
        console.log(
          `resuming from ${checkpointDir}: ${resume.epochsDone} of ${epochs} epochs done`,
        );
      }
      const outliers = withOutliers && recipe.outliers ? await recipe.outliers(dataDir) : undefined;
      const model = recipe.build(flags.seed);
      const bar = new SingleBar(
        {
          format:
            'epoch {epoch}/{epochs} |{bar}| {value}/{total} batches | loss {loss} | acc {acc} | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 50,
        },
        Presets.shades_classic,
      );
      const result = await trainClassifier(model, train, {
        epochs,
        batchSize,
        validationSplit,
        seed: flags.seed,
        learningRate: (e) => scheduleFn(lr, e, epochs),
        ...(augment && recipe.augment ? { trainFiller: recipe.augment(train) } : {}),
        ...(outliers ? { outliers } : {}),
        ...(patience > 0 ? { earlyStopping: { patience } } : {}),
        ...(resume ? { resume } : {}),
        onCheckpoint: async (c) => {
          await saveCheckpoint(checkpointDir, fingerprint, c);
          await writeFile(
            path.join(flags.checkpointDir, `${id}-history.png`),
            await renderLearningCurves([{ label: id, history: c.history }], id),
          );
        },
        onProgress: (p) => {
          if (p.kind === 'epoch-start')
            bar.start(p.batches, 0, { epoch: p.epoch + 1, epochs, loss: '-', acc: '-' });
          else if (p.kind === 'batch')
            bar.update(p.batch, { loss: p.loss.toFixed(4), acc: p.acc.toFixed(4) });
          else {
            bar.stop();
            const r = p.record;
            console.log(
              `epoch ${r.epoch}: loss ${r.loss.toFixed(4)} acc ${r.acc.toFixed(4)} val_loss ${r.valLoss.toFixed(4)} val_acc ${r.valAcc.toFixed(4)} lr ${r.lr.toExponential(2)} ${r.samplesPerSec.toFixed(0)} samples/s`,
            );
          }
        },
      });
      if (result.stopped === 'early-stopping') {
        console.log(
          `early stopping after epoch ${result.history.length}: kept epoch ${result.keptEpoch}`,
        );
      }
      const evalRes = await evaluateClassifier(model, test);
      console.log(`test accuracy on ${test.count} images: ${(evalRes.acc * 100).toFixed(2)}%`);
      const outDir = path.join(flags.out ?? config.MODELS_DIR, id);
      const old = await readModelMeta(outDir).catch(() => undefined);
      if (old?.testAccuracy !== undefined && old.testAccuracy > evalRes.acc && !flags.force) {
        console.log(
          `kept the existing model: its test accuracy ${(old.testAccuracy * 100).toFixed(2)}% is higher (use --force to replace)`,
        );
        model.dispose();
        return;
      }
      const meta: ModelMeta = {
        id,
        architecture: recipe.architecture,
        dataset: recipe.dataset,
        inputShape: [train.height, train.width, train.channels],
        preprocess: recipe.preprocess,
        classNames: [...train.classNames],
        testAccuracy: evalRes.acc,
        testSamples: test.count,
        training: {
          epochs: result.history.length,
          keptEpoch: result.keptEpoch,
          batchSize,
          learningRate: lr,
          schedule,
          augmentation: augment,
          seconds: Math.round(result.history.reduce((sum, r) => sum + r.seconds, 0)),
          backend: backend.name,
          date: new Date().toISOString(),
          seed: flags.seed,
          validationSplit,
          samplesPerSec: Math.round(
            result.history.reduce((sum, r) => sum + r.samplesPerSec, 0) / result.history.length,
          ),
          command,
        },
      };
      if (recipe.calibrateOod) {
        meta.ood = await calibrateOod(model, train, result.validationIndices, dataDir);
      }
      await saveModel(model, outDir, {
        [META_FILE]: JSON.stringify(meta, null, 2) + '\n',
        'history.json': JSON.stringify(result.history, null, 2) + '\n',
        'history.png': await renderLearningCurves([{ label: id, history: result.history }], id),
      });
      logger.info({ id, outDir, testAccuracy: evalRes.acc }, 'model saved');
      console.log(`saved ${outDir}`);
      model.dispose();
    });
}
