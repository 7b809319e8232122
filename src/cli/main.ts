import { Command, CommanderError } from 'commander';
import { loadConfig, type Config } from '../config.ts';
import { isUserError } from '../errors.ts';
import { logger } from '../logger.ts';
import { registerArch } from './commands/arch.ts';
import { registerCalibrate } from './commands/calibrate.ts';
import { registerCompare } from './commands/compare.ts';
import { registerDownload } from './commands/download.ts';
import { registerFinetuneClass } from './commands/finetune-class.ts';
import { registerLabels } from './commands/labels.ts';
import { registerGradcam } from './commands/gradcam.ts';
import { registerImages } from './commands/images.ts';
import { registerCheck, registerExportKeras } from './commands/keras.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerPredict } from './commands/predict.ts';
import { registerQuantize } from './commands/quantize.ts';
import { registerRetrain } from './commands/retrain.ts';
import { registerSaliency } from './commands/saliency.ts';
import { registerTrain } from './commands/train.ts';

/** Builds the `cnn-classroom` command line (commander) over a configuration. */
export function buildProgram(config: Config): Command {
  const program = new Command('cnn-classroom')
    .description('CNN course tools: train, predict, explain and compare convolutional networks')
    .showHelpAfterError();
  registerPredict(program, config);
  registerTrain(program, config);
  registerDownload(program, config);
  registerCalibrate(program, config);
  registerGradcam(program, config);
  registerSaliency(program, config);
  registerArch(program, config);
  registerCompare(program, config);
  registerQuantize(program, config);
  registerImages(program, config);
  registerExportKeras(program, config);
  registerCheck(program, config);
  registerJobs(program, config);
  // issue 16: the class teaches the bot
  registerLabels(program, config);
  registerFinetuneClass(program, config);
  registerRetrain(program, config); // issue 16
  return program;
}

/** File-system failures caused by the paths a user typed: reported in one line, no stack. */
const FILE_ERRORS = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM']);

try {
  // The environment over .env, as for the bot: CNN_SHARED_DATA in .env works here too.
  const config = loadConfig();
  // A command line speaks through its output and exit status: logs only for warnings, unless asked.
  logger.level = config.LOG_LEVEL ?? 'warn';
  await buildProgram(config).parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  const fsCode = (e as NodeJS.ErrnoException).code;
  const fileProblem = fsCode !== undefined && FILE_ERRORS.has(fsCode);
  const msg = isUserError(e)
    ? `${e.id}: ${e.message}`
    : fileProblem
      ? `file.${fsCode === 'ENOENT' ? 'not_found' : 'unreadable'}: ${(e as Error).message}`
      : (e as Error).message;
  if (isUserError(e) || fileProblem) logger.info({ code: fsCode }, 'command refused');
  else logger.error({ err: e }, 'command failed');
  console.error(`error: ${msg}`);
  process.exit(1);
}
