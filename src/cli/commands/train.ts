import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import { SingleBar, Presets } from 'cli-progress';
import type * as tf from '@tensorflow/tfjs';
import { Argument, Option, type Command } from 'commander';
import type { Config } from '../../config.ts';
import { logger } from '../../logger.ts';
import { initBackend } from '../../ml/backend.ts';
import { saveModel } from '../../ml/model-io.ts';
import {
  META_FILE,
  readModelMeta,
  type ModelMeta,
  type ModelQuantization,
} from '../../ml/model-meta.ts';
import { applyQuantization, weightBytes } from '../../ml/quantize.ts';
import { loadDataset } from '../../trainer/datasets/load.ts';
import { calibrateOod } from '../../trainer/calibrate-ood.ts';
import { renderLearningCurves } from '../../imaging/curves.ts';
import {
  loadCheckpoint,
  readCheckpointFingerprint,
  saveCheckpoint,
} from '../../trainer/checkpoint.ts';
import { RECIPES, SCHEDULES, type ScheduleName } from '../../trainer/recipes.ts';
import {
  evaluateClassifier,
  trainClassifier,
  type LabelledImages,
  type TrainCheckpoint,
  weightsMismatch,
} from '../../trainer/train.ts';
import {
  parseCountOption,
  parseIntOption,
  parsePositiveNumberOption,
  parseShareOption,
} from '../options.ts';

/** Where `train` keeps its per-epoch checkpoints unless told otherwise (git-ignored). */
export const DEFAULT_CHECKPOINT_DIR = 'checkpoints';

/**
 * Float32 weights larger than this many bytes (10 MB, decimal: 10,000,000) are shipped as uint8:
 * a quarter of the size for the repository and for every bot start, at the cost measured on
 * the test set and recorded in `meta.json`. Of the shipped models only AlexNet (86.5 MB) is over.
 */
export const QUANTIZE_ABOVE_BYTES = 10_000_000;

/**
 * The weights `train` ships and their test accuracy: `model` itself when its float32 weights
 * are at most `aboveBytes`; otherwise `model` with its weights replaced, in place, by their uint8
 * round trip (what loading the quantized save gives), evaluated again on `test`.
 *
 * @param float32Accuracy the accuracy already measured on `test` before quantizing, 0..1.
 * @returns `testAccuracy` of the shipped weights, 0..1, and `quantization` for `meta.json`
 *   (absent when the weights stay float32).
 */
export async function weightsToShip(
  model: tf.LayersModel,
  test: LabelledImages,
  float32Accuracy: number,
  aboveBytes = QUANTIZE_ABOVE_BYTES,
): Promise<{ testAccuracy: number; quantization?: ModelQuantization }> {
  const float32Bytes = weightBytes(model);
  if (float32Bytes <= aboveBytes) return { testAccuracy: float32Accuracy };
  const { bytes } = applyQuantization(model, 'uint8');
  const testAccuracy = (await evaluateClassifier(model, test)).acc;
  return {
    testAccuracy,
    quantization: { dtype: 'uint8', float32TestAccuracy: float32Accuracy, float32Bytes, bytes },
  };
}

/**
 * The checkpoint in `dir` to resume, if it is of the same settings and fits `model`; otherwise
 * says on stdout why it is not resumed (it is then replaced after this run's first epoch).
 */
async function resumableCheckpoint(
  dir: string,
  fingerprint: string,
  model: tf.LayersModel,
): Promise<TrainCheckpoint | undefined> {
  let found: Awaited<ReturnType<typeof loadCheckpoint>>;
  try {
    found = await loadCheckpoint(dir, fingerprint);
  } catch (e) {
    console.log(`not resuming: ${(e as Error).message}; it will be replaced`);
    return undefined;
  }
  if (!found) {
    const other = await readCheckpointFingerprint(dir);
    if (other !== undefined) {
      console.log(
        `not resuming ${dir}: it holds a run of other settings (${other}); it will be replaced after the first epoch (--checkpoint-dir elsewhere keeps it)`,
      );
    }
    return undefined;
  }
  const mismatch = weightsMismatch(model, found.weights);
  if (mismatch) {
    console.log(
      `not resuming ${dir}: its weights do not fit this model's architecture (changed since?: ${mismatch}); it will be replaced`,
    );
    return undefined;
  }
  return found;
}

/** Fewest images a worker's shard of a batch should hold (batch-norm statistics, per-step overhead). */
const MIN_SHARD_ROWS = 32;

/** Every core, but no shard of the batch under {@link MIN_SHARD_ROWS} images; at least 1. */
function defaultWorkers(batchSize: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(batchSize / MIN_SHARD_ROWS)));
}

const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

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
  quantize: boolean;
  quantizeAbove: number;
  workers?: number;
}

/** `train <model>`: trains a shipped model from scratch on its full data set. */
export function registerTrain(program: Command, config: Config): void {
  program
    .command('train')
    .description(`train a model on its full data set (${Object.keys(RECIPES).join(', ')})`)
    .addArgument(new Argument('<model>', 'model id').choices(Object.keys(RECIPES)))
    .option('--epochs <n>', 'epochs', parseIntOption)
    .option('--batch <n>', 'batch size', parseIntOption)
    .option('--lr <rate>', 'base learning rate (Adam)', parsePositiveNumberOption)
    .addOption(
      new Option('--schedule <name>', "learning-rate schedule (default: the model's)").choices(
        Object.keys(SCHEDULES),
      ),
    )
    .option(
      '--patience <epochs>',
      'early stopping: stop after this many epochs without a better validation accuracy and keep the best epoch (0: off)',
      parseCountOption,
    )
    .option('--seed <n>', 'random seed', parseIntOption, 42)
    .option('--validation-split <share>', 'share held out for validation', parseShareOption)
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
    .option(
      '--quantize-above <bytes>',
      'ship the weights as uint8 when their float32 size exceeds this many bytes',
      parseCountOption,
      QUANTIZE_ABOVE_BYTES,
    )
    .option('--no-quantize', 'ship float32 weights whatever their size')
    .option(
      '--workers <n>',
      `worker threads for data-parallel training on the wasm backend, one core each, at most the batch size (default: every core, ${availableParallelism()} here, but no shard under ${MIN_SHARD_ROWS} images; when resuming, the checkpoint's count)`,
      parseIntOption,
    )
    .action(async (id: string, flags: TrainFlags, cmd: Command) => {
      const recipe = RECIPES[id];
      if (!recipe) throw new Error(`no recipe for "${id}"`); // commander checked the choices
      const batchSize = flags.batch ?? recipe.defaults.batchSize;
      if (flags.workers !== undefined && flags.workers > batchSize) {
        cmd.error(
          `error: --workers ${flags.workers} cannot split a batch of ${batchSize} (at most one worker per image)`,
        );
      }
      const schedule = (flags.schedule ?? recipe.defaults.schedule) as ScheduleName;
      const scheduleFn = SCHEDULES[schedule];
      const backend = await initBackend();
      const dataDir = flags.dataDir ?? config.DATA_DIR;
      const train = await loadDataset(recipe.dataset, 'train', dataDir);
      const test = await loadDataset(recipe.dataset, 'test', dataDir);
      const epochs = flags.epochs ?? recipe.defaults.epochs;
      const lr = flags.lr ?? recipe.defaults.learningRate;
      const patience = flags.patience ?? recipe.defaults.patience ?? 0;
      const validationSplit = flags.validationSplit ?? recipe.defaults.validationSplit;
      const augment = flags.augment && recipe.augment !== undefined;
      const withOutliers = flags.outliers && recipe.outliers !== undefined;
      const commandWith = (workers: number): string =>
        [
          `bin/cnn-classroom train ${id} --epochs ${epochs} --batch ${batchSize} --lr ${lr}`,
          `--schedule ${schedule} --patience ${patience} --seed ${flags.seed}`,
          `--validation-split ${validationSplit} --workers ${workers}`,
          augment || !recipe.augment ? '' : '--no-augment',
          withOutliers || !recipe.outliers ? '' : '--no-outliers',
        ]
          .filter(Boolean)
          .join(' ');
      const checkpointDir = path.join(flags.checkpointDir, id);
      let workers = 1;
      if (backend.name !== 'wasm') {
        // Workers replicate the wasm backend; tfjs-node uses every core itself.
        if (flags.workers !== undefined && flags.workers !== 1) {
          console.log(
            `--workers ignored: worker threads run the wasm backend, not ${backend.name}`,
          );
        }
      } else if (flags.workers !== undefined) {
        workers = flags.workers;
      } else {
        workers = defaultWorkers(batchSize);
        // The same command resumes on a machine with another core count: keep the checkpoint's.
        const other = flags.resume ? await readCheckpointFingerprint(checkpointDir) : undefined;
        const theirs = Number(/ --workers (\d+)/.exec(other ?? '')?.[1]);
        if (theirs >= 1 && theirs <= batchSize && other === commandWith(theirs)) workers = theirs;
      }
      const command = commandWith(workers);
      const model = recipe.build(flags.seed);
      // The settings a checkpoint must share to be resumed: the command (without its folders)
      // and the architecture, for a builder changed since the checkpoint was written.
      const fingerprint = command;
      const resume = flags.resume
        ? await resumableCheckpoint(checkpointDir, fingerprint, model)
        : undefined;
      if (resume) {
        console.log(
          `resuming from ${checkpointDir}: ${resume.epochsDone} of ${epochs} epochs done`,
        );
      }
      console.log(
        `training ${id} on ${train.count} images, ${workers} worker thread${workers === 1 ? '' : 's'} (${backend.name} backend)`,
      );
      const outliers = withOutliers && recipe.outliers ? await recipe.outliers(dataDir) : undefined;
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
        workers,
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
      const { testAccuracy, quantization } = await weightsToShip(
        model,
        test,
        evalRes.acc,
        flags.quantize ? flags.quantizeAbove : Infinity,
      );
      if (quantization) {
        console.log(
          `weights ${megabytes(quantization.float32Bytes)} as float32, over the limit of ${flags.quantizeAbove.toLocaleString('en')} bytes: shipped as uint8, ${megabytes(quantization.bytes)}; test accuracy ${(testAccuracy * 100).toFixed(2)}% (float32 ${(evalRes.acc * 100).toFixed(2)}%)`,
        );
      }
      const outDir = path.join(flags.out ?? config.MODELS_DIR, id);
      const old = await readModelMeta(outDir).catch(() => undefined);
      if (old?.testAccuracy !== undefined && old.testAccuracy > testAccuracy && !flags.force) {
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
        testAccuracy,
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
          workers,
          command,
        },
        ...(quantization ? { quantization } : {}),
      };
      if (recipe.calibrateOod) {
        meta.ood = await calibrateOod(model, train, result.validationIndices, dataDir);
      }
      await saveModel(
        model,
        outDir,
        {
          [META_FILE]: JSON.stringify(meta, null, 2) + '\n',
          'history.json': JSON.stringify(result.history, null, 2) + '\n',
          'history.png': await renderLearningCurves([{ label: id, history: result.history }], id),
        },
        quantization ? { quantize: quantization.dtype } : {},
      );
      logger.info({ id, outDir, testAccuracy, quantization }, 'model saved');
      console.log(`saved ${outDir}`);
      model.dispose();
    });
}
