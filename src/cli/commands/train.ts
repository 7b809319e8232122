import path from 'node:path';
import { availableParallelism } from 'node:os';
import { SingleBar, Presets } from 'cli-progress';
import { Argument, Option, type Command } from 'commander';
import type { Config } from '../../config.ts';
import { DATASET_NAMES, type DatasetName } from '../../trainer/datasets/types.ts';
import { RECIPES, SCHEDULES, type ScheduleName } from '../../trainer/recipes.ts';
import {
  MIN_SHARD_ROWS,
  QUANTIZE_ABOVE_BYTES,
  runTrainingJob,
  type TrainingCallbacks,
} from '../../trainer/run-training-job.ts';
import {
  parseCountOption,
  parseIntOption,
  parsePositiveNumberOption,
  parseShareOption,
} from '../options.ts';
import { formatMegabytesText } from '../text-table.ts';

/** Where `train` keeps its per-epoch checkpoints unless told otherwise (git-ignored). */
export const DEFAULT_CHECKPOINT_DIR = 'checkpoints';

interface TrainFlags {
  epochs?: number;
  batch?: number;
  lr?: number;
  schedule?: ScheduleName;
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
  dataset?: DatasetName;
  calibrate: boolean;
  extraData?: string;
  initFrom?: string;
}

/**
 * What `train` says when Ctrl-C stopped it: nothing written when it stopped while loading; where
 * the same command resumes from when this run has a checkpoint (resumed, or an epoch saved
 * since); or that it has none yet, so the same command starts afresh (a checkpoint of another run
 * found there is still that run's).
 */
export function stoppedMessage(
  checkpointDir: string,
  run: { readonly began: boolean; readonly checkpointed: boolean; readonly otherRunKept: boolean },
): string {
  if (!run.began) return 'stopped before training began; nothing was written';
  if (run.checkpointed) return `stopped; the same command resumes from ${checkpointDir}`;
  return `stopped before the first epoch ended: no checkpoint of this run to resume, the same command starts afresh${run.otherRunKept ? ` (${checkpointDir} still holds the other run's checkpoint)` : ''}`;
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
    .option(
      '--init-from <dir>',
      'start from the weights of a saved model of the same architecture (fine-tuning, a warm restart) instead of a fresh initialisation; the optimizer starts afresh',
    )
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
    .addOption(
      new Option('--dataset <name>', "data set to train on (default: the model's)").choices(
        DATASET_NAMES,
      ),
    )
    .option(
      '--extra-data <dir>',
      'extra labelled photos to train on, one folder per class name (<dir>/<class>/<image>)',
    )
    .option('--no-calibrate', 'skip calibrating the "not one of the classes" criterion')
    .action(async (id: string, flags: TrainFlags, cmd: Command) => {
      const recipe = RECIPES[id];
      if (!recipe) throw new Error(`no recipe for "${id}"`); // commander checked the choices
      const batchSize = flags.batch ?? recipe.defaults.batchSize;
      if (flags.workers !== undefined && flags.workers > batchSize) {
        cmd.error(
          `error: --workers ${flags.workers} cannot split a batch of ${batchSize} (at most one worker per image)`,
        );
      }
      if (flags.initFrom !== undefined && flags.initFrom.trim() === '') {
        // An empty path (an unset shell variable) must not silently mean a fresh start.
        cmd.error("error: --init-from needs a saved model's folder (one holding model.json)");
      }
      const bar = new SingleBar(
        {
          format:
            'epoch {epoch}/{epochs} |{bar}| {value}/{total} batches | loss {loss} | acc {acc} | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 50,
        },
        Presets.shades_classic,
      );
      let epochs = 0;
      // Whether this run has a checkpoint to resume (a resumed one, or an epoch saved since).
      let began = false;
      let checkpointed = false;
      let otherRunKept = false;
      const progress: TrainingCallbacks = {
        onTrainBegin: (info) => {
          epochs = info.epochs;
          began = true;
          checkpointed = info.resumed !== undefined;
          otherRunKept = info.notResumed?.reason === 'other-settings';
          if (info.workersIgnored) {
            console.log(
              `--workers ignored: worker threads run the wasm backend, not ${info.backend}`,
            );
          }
          const not = info.notResumed;
          if (not?.reason === 'damaged') {
            console.log(`not resuming: ${not.detail}; it will be replaced`);
          } else if (not?.reason === 'other-settings') {
            console.log(
              `not resuming ${not.dir}: it holds a run of other settings (${not.detail}); it will be replaced after the first epoch (--checkpoint-dir elsewhere keeps it)`,
            );
          } else if (not?.reason === 'architecture') {
            console.log(
              `not resuming ${not.dir}: its weights do not fit this model's architecture (changed since?: ${not.detail}); it will be replaced`,
            );
          }
          if (info.initFrom && !info.resumed) {
            const acc = info.initFrom.testAccuracy;
            console.log(
              `starting from the weights of ${info.initFrom.dir}${acc === undefined ? '' : ` (test accuracy ${(acc * 100).toFixed(2)}%)`}`,
            );
          }
          if (info.resumed) {
            console.log(
              `resuming from ${info.resumed.dir}: ${info.resumed.epochsDone} of ${info.epochs} epochs done${info.initFrom ? ` (a run started from the weights of ${info.initFrom.dir})` : ''}`,
            );
          }
          if (info.extra) {
            console.log(
              `extra labelled photos: ${info.extra.count}${info.extra.skipped.length ? `, ${info.extra.skipped.length} refused by the photo pipeline` : ''}`,
            );
          }
          console.log(
            `training ${info.model} on ${info.trainSamples} images, ${info.workers} worker thread${info.workers === 1 ? '' : 's'} (${info.backend} backend)`,
          );
        },
        onEpochBegin: (p) =>
          bar.start(p.batches, 0, { epoch: p.epoch + 1, epochs, loss: '-', acc: '-' }),
        onBatchEnd: (p) => bar.update(p.batch, { loss: p.loss.toFixed(4), acc: p.acc.toFixed(4) }),
        onCheckpoint: () => {
          checkpointed = true;
        },
        onEpochEnd: (r) => {
          bar.stop();
          console.log(
            `epoch ${r.epoch}: loss ${r.loss.toFixed(4)} acc ${r.acc.toFixed(4)} val_loss ${r.valLoss.toFixed(4)} val_acc ${r.valAcc.toFixed(4)} lr ${r.lr.toExponential(2)} ${r.samplesPerSec.toFixed(0)} samples/s`,
          );
        },
      };
      // Ctrl-C stops after the current batch; the last epoch's checkpoint resumes the run.
      const abort = new AbortController();
      const onSigint = (): void => {
        bar.stop();
        console.log('stopping after this batch (Ctrl-C again to quit now)');
        process.off('SIGINT', onSigint);
        abort.abort();
      };
      process.on('SIGINT', onSigint);
      let result: Awaited<ReturnType<typeof runTrainingJob>>;
      try {
        result = await runTrainingJob(
          {
            model: id,
            ...(flags.dataset ? { dataset: flags.dataset } : {}),
            dataDir: flags.dataDir ?? config.DATA_DIR,
            ...(config.CNN_SHARED_DATA ? { sharedDataDir: config.CNN_SHARED_DATA } : {}),
            ...(flags.epochs !== undefined ? { epochs: flags.epochs } : {}),
            batchSize,
            ...(flags.lr !== undefined ? { learningRate: flags.lr } : {}),
            ...(flags.schedule ? { schedule: flags.schedule } : {}),
            ...(flags.patience !== undefined ? { patience: flags.patience } : {}),
            seed: flags.seed,
            ...(flags.validationSplit !== undefined
              ? { validationSplit: flags.validationSplit }
              : {}),
            ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
            augment: flags.augment,
            outliers: flags.outliers,
            calibrate: flags.calibrate,
            outputDir: path.join(flags.out ?? config.MODELS_DIR, id),
            checkpointDir: path.join(flags.checkpointDir, id),
            resume: flags.resume,
            ...(flags.initFrom !== undefined ? { initFrom: flags.initFrom } : {}),
            force: flags.force,
            quantizeAboveBytes: flags.quantize ? flags.quantizeAbove : null,
            ...(flags.extraData ? { extraData: { dir: flags.extraData } } : {}),
          },
          { signal: abort.signal, onProgress: progress, backend: config.TFJS_BACKEND },
        );
      } catch (e) {
        if (abort.signal.aborted) {
          console.log(
            stoppedMessage(path.join(flags.checkpointDir, id), {
              began,
              checkpointed,
              otherRunKept,
            }),
          );
          process.exitCode = 130;
          return;
        }
        throw e;
      } finally {
        process.off('SIGINT', onSigint);
      }
      const m = result.metrics;
      if (m.stopped === 'early-stopping') {
        console.log(`early stopping after epoch ${m.history.length}: kept epoch ${m.keptEpoch}`);
      }
      const float32 = m.float32TestAccuracy ?? m.testAccuracy;
      console.log(`test accuracy on ${m.testSamples} images: ${(float32 * 100).toFixed(2)}%`);
      const q = result.quantization;
      if (q) {
        console.log(
          `weights ${formatMegabytesText(q.float32Bytes)} as float32, over the limit of ${flags.quantizeAbove.toLocaleString('en')} bytes: shipped as uint8, ${formatMegabytesText(q.bytes)}; test accuracy ${(m.testAccuracy * 100).toFixed(2)}% (float32 ${(float32 * 100).toFixed(2)}%)`,
        );
      }
      if (!result.saved) {
        console.log(
          `kept the existing model: its test accuracy ${((result.keptTestAccuracy ?? 0) * 100).toFixed(2)}% is higher (use --force to replace)`,
        );
        return;
      }
      console.log(`saved ${result.modelDir}`);
    });
}
