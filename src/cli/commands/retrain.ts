/**
 * `retrain <model> [--with class] [--epochs N] [--lr X] [--batch N] [--force] [--wait]
 * [--worker] [--json]`: queues the same job as the chat's `/retrain` (same parser, limits and
 * refusals, `with=class` included), and with `--wait` follows it to its end, printing its
 * progress and the chat's final text. `--worker` runs a trainer worker in this process until
 * the job ends, for a machine where no bot or `worker` is running.
 */
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { jobStatusText, translator, type JobView } from '../../core/index.ts';
import { userErrorKey } from '../../core/i18n.ts';
import { parseRetrainArgs } from '../../core/training.ts';
import { isUserError } from '../../errors.ts';
import { createDbWorker } from '../../jobs/db-worker.ts';
import { workerOptions } from '../../jobs/trainer-runtime.ts';
import { logger } from '../../logger.ts';
import { parseCountOption, parsePositiveNumberOption } from '../options.ts';
import { withTraining } from './jobs.ts';

interface Flags {
  with?: string;
  epochs?: number;
  lr?: number;
  batch?: number;
  force?: boolean;
  wait?: boolean;
  worker?: boolean;
  json?: boolean;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Registers `retrain`. */
export function registerRetrain(program: Command, config: Config): void {
  program
    .command('retrain')
    .description(
      "queue a training job as /retrain does (--with class: fine-tune the served LeNet digit model on the class's labelled photos)",
    )
    .argument('<model>', 'model id, e.g. lenet-mnist')
    .option('--with <data>', "class: the class's labelled photos (with MNIST replay)")
    .option('--epochs <n>', 'epochs', parseCountOption)
    .option('--lr <x>', 'learning rate', parsePositiveNumberOption)
    .option('--batch <n>', 'batch size', parseCountOption)
    .option('--force', 'promote the new version whatever its figures')
    .option('--wait', 'follow the job to its end (needs a worker: npm start, worker, or --worker)')
    .option('--worker', 'run a trainer worker in this process until the job ends (implies --wait)')
    .option('--json', 'print the job as JSON (at the end with --wait)')
    .action(async (model: string, flags: Flags) => {
      const t = translator('en');
      const words = [
        model,
        flags.with === undefined ? '' : `with=${flags.with}`,
        flags.epochs === undefined ? '' : `epochs=${flags.epochs}`,
        flags.lr === undefined ? '' : `lr=${flags.lr}`,
        flags.batch === undefined ? '' : `batch=${flags.batch}`,
        flags.force ? 'force' : '',
      ].filter(Boolean);
      const job = await withTraining(config, async (training, db) => {
        try {
          const parsed = parseRetrainArgs(
            words.join(' '),
            await training.trainable(),
            training.limits,
          );
          if (!parsed.ok) throw parsed.error;
          const { job: queued, place } = await training.enqueue(parsed.value, 'cli');
          if (!flags.json) console.log(jobStatusText(queued, t, 'en', place, { editable: false }));
          if (!flags.wait && !flags.worker) return queued;
          const worker = flags.worker
            ? createDbWorker({ ...workerOptions(config, db, logger), pollMs: 500 })
            : undefined;
          try {
            return await follow(queued.id, (id) => training.get(id), flags.json === true);
          } finally {
            await worker?.close();
          }
        } catch (e) {
          // The chat's words (the count needed and how to get more), not the log's.
          if (isUserError(e))
            throw new Error(`${e.id}: ${t(userErrorKey(e.id), e.params)}`, { cause: e });
          throw e;
        }
      });
      if (flags.json) console.log(JSON.stringify({ job }));
      else if (FINAL.has(job.state)) console.log(jobStatusText(job, t, 'en'));
      if (job.state === 'failed' || job.state === 'cancelled') process.exitCode = 1;
    });
}

/**
 * Polls the job each `intervalMs` until it ends, printing a progress line when it changes. A
 * queued job prints nothing: the line printed when it was queued named its place (printing it
 * again repeated that line, or named place 1 when the job waited behind others).
 */
export async function follow(
  id: number,
  get: (id: number) => Promise<JobView | undefined>,
  quiet: boolean,
  print: (line: string) => void = console.log,
  intervalMs = 1000,
): Promise<JobView> {
  const t = translator('en');
  let last = '';
  for (;;) {
    const job = await get(id);
    if (!job) throw new Error(`job ${id} is gone`);
    if (FINAL.has(job.state)) return job;
    const text = job.state === 'queued' ? '' : jobStatusText(job, t, 'en');
    if (!quiet && text !== '' && text !== last) print(text);
    last = text;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
