/**
 * The commands the core serves, in the order `/help` and the platforms' menus show them.
 * Adding a command: one new file in this folder (`export default { ... } satisfies Command`),
 * its texts in `../locales/en.json` and `ru.json`, and one line here.
 */
import type { Command } from '../command.ts';
import arch from './arch.ts';
import check from './check.ts';
import cancel from './cancel.ts';
import compare from './compare.ts';
import gradcam from './gradcam.ts';
import grant from './grant.ts';
import help from './help.ts';
import history from './history.ts';
import jobs from './jobs.ts';
import lang from './lang.ts';
import models from './models.ts';
import label from './label.ts';
import review from './review.ts';
import exportCommand from './export.ts';
import stats from './stats.ts';
import model from './model.ts';
import predict from './predict.ts';
import retrain from './retrain.ts';
import revoke from './revoke.ts';
import rollback from './rollback.ts';
import saliency from './saliency.ts';
import start from './start.ts';
import submissions from './submissions.ts';
import versions from './versions.ts';

/** Every command, in menu order. */
export const commands: readonly Command[] = [
  start,
  help,
  predict,
  gradcam,
  saliency,
  models,
  arch,
  compare,
  history,
  lang,
  check,
  submissions,
  // issue 16: the class teaches the bot
  label,
  review,
  exportCommand,
  stats,
  model,
  retrain,
  jobs,
  cancel,
  versions,
  rollback,
  grant,
  revoke,
];

/** The command for a bare image (a photo without a command). */
export const BARE_IMAGE_COMMAND = 'predict';
