/**
 * `jobs`, `versions <model>`, `versions prune <model|--all> --keep N`, `rollback <model>
 * [version]` and `worker`: the trainer from the command line, through the same `TrainingService` the chat commands use (`src/jobs/`), on the
 * configured database. Each prints a table, or one JSON object with `--json`.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../../config.ts';
import { translator } from '../../core/i18n.ts';
import {
  authorText,
  formatDuration,
  type JobView,
  type TrainingService,
} from '../../core/index.ts';
import { openDatabase, type Database } from '../../db/database.ts';
import type { BullProducer } from '../../jobs/bull.ts';
import { startStandaloneWorker } from '../../jobs/standalone-worker.ts';
import { startTrainingService } from '../../jobs/trainer-runtime.ts';
import { pruneVersions, type PruneReport } from '../../jobs/version-retention.ts';
import { logger } from '../../logger.ts';
import { formatMegabytesText, formatTextTable } from '../text-table.ts';

/**
 * Runs `f` with the trainer service over the configured database, closed afterwards (and the
 * database itself, for `retrain --worker`). With `REDIS_URL` set, queued jobs also go to BullMQ
 * (as the bot's do): the workers then take jobs only from there.
 * @param o.bullPrefix BullMQ's key prefix (tests: one per run).
 * @throws {Error} within the connect timeout when `REDIS_URL` is set and Redis is unreachable.
 */
export async function withTraining<T>(
  config: Config,
  f: (t: TrainingService, db: Database) => Promise<T>,
  o: { readonly bullPrefix?: string } = {},
): Promise<T> {
  const db = await openDatabase(config);
  let producer: BullProducer | undefined;
  try {
    const started = await startTrainingService(config, db, logger, o);
    producer = started.producer;
    return await f(started.training, db);
  } finally {
    await producer?.close();
    await db.close();
  }
}

const pct = (v: number | null | undefined): string =>
  v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)}%`;

function progressOf(j: JobView): string {
  if (j.state === 'running' && j.progress) {
    const p = j.progress;
    return `epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} acc ${pct(p.acc)} ETA ${formatDuration(p.etaSeconds)}`;
  }
  if (j.result)
    return `v${j.version ?? '?'} ${pct(j.result.testAccuracy)} (${j.result.promoted ? 'promoted' : 'kept'})`;
  if (j.failure) return `${j.failure.reason}: ${j.failure.message}`;
  return '';
}

/** `versions prune`'s table: each version removed with its bytes, the totals, what was kept. */
function pruneText(r: PruneReport, what: string): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const kept = r.kept.map((k) => `${k.modelId}@${k.version} (${k.reason})`).join(', ');
  return formatTextTable({
    title: `${r.dryRun ? 'Dry run: ' : ''}versions of ${what} beyond the newest ${r.keep}`,
    header: ['model', 'version', 'files', 'database', 'disk'],
    align: ['left', 'right', 'right', 'right', 'right'],
    rows: r.removed.map((v) => [
      v.modelId,
      v.version,
      String(v.files),
      formatMegabytesText(v.dbBytes),
      formatMegabytesText(v.diskBytes),
    ]),
    footerRows: [
      [
        `${verb} ${r.removed.length}`,
        '',
        String(r.removed.reduce((n, v) => n + v.files, 0)),
        formatMegabytesText(r.dbBytes),
        formatMegabytesText(r.diskBytes),
      ],
    ],
    footnotes: [
      `kept: ${kept || 'none'}`,
      ...r.skipped.map((s) => `left alone: ${s.modelId}@${s.version}: ${s.reason}`),
    ],
  });
}

/** Registers the trainer's commands. */
export function registerJobs(program: Command, config: Config): void {
  program
    .command('jobs')
    .description('list queued, running and recent training jobs')
    .option('--json', 'print one JSON object instead of the table', false)
    .action(async (flags: { json: boolean }) => {
      const jobs = await withTraining(config, (t) => t.list());
      if (flags.json) {
        console.log(JSON.stringify({ jobs }));
        return;
      }
      const t = translator('en');
      console.log(
        formatTextTable({
          title: 'Training jobs',
          header: ['job', 'model', 'state', 'progress / result', 'asked by', 'duration'],
          rows: jobs.map((j) => [
            String(j.id),
            j.modelId,
            j.state,
            progressOf(j),
            authorText(j.requester, t, j.requesterName),
            j.startedAt
              ? formatDuration(
                  ((j.finishedAt ?? new Date()).getTime() - j.startedAt.getTime()) / 1000,
                )
              : '—',
          ]),
        }),
      );
    });

  const versionsCommand = program
    .command('versions')
    .description("list a model's versions (▶ the served one)")
    .argument('<model>', 'model id')
    .option('--json', 'print one JSON object instead of the table', false)
    .action(async (model: string, flags: { json: boolean }) => {
      const versions = await withTraining(config, (t) => t.versions(model));
      const served = versions.find((v) => v.served)?.version ?? null;
      if (flags.json) {
        console.log(JSON.stringify({ model, served, versions }));
        return;
      }
      const t = translator('en');
      console.log(
        formatTextTable({
          title: `Versions of ${model}`,
          header: ['', 'version', 'test accuracy', 'created', 'by', 'job', 'parent'],
          rows: versions.map((v) => [
            v.served ? '▶' : '',
            v.version,
            pct(v.testAccuracy),
            v.createdAt.toISOString().slice(0, 16).replace('T', ' '),
            authorText(v.createdBy, t, v.createdByName),
            v.jobId === null ? '—' : String(v.jobId),
            v.parentVersion ?? '—',
          ]),
        }),
      );
    });

  versionsCommand
    .command('prune')
    .description(
      'delete old versions (rows, stored files, folders); the shipped, the served and the ' +
        'rollback version are always kept, every version of a model while its job runs, and a ' +
        "version until its job's curves are sent to the chat",
    )
    .argument('[model]', 'model id (or --all)')
    .requiredOption('--keep <n>', 'how many of the newest trained versions to keep', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number >= 0');
      return Number(v);
    })
    .option('--all', 'every model with versions', false)
    .option('--dry-run', 'show what would be removed; change nothing', false)
    .option('--json', 'print one JSON object instead of the table', false)
    .action(
      async (
        model: string | undefined,
        flags: { keep: number; all: boolean; dryRun: boolean; json: boolean },
        command: Command,
      ) => {
        if ((model === undefined) === !flags.all) {
          command.error('error: name one model, or --all (not both)');
        }
        const db = await openDatabase(config);
        const report = await pruneVersions(
          db,
          { modelsDir: config.MODELS_DIR, dataDir: config.DATA_DIR },
          { modelId: model?.toLowerCase(), keep: flags.keep, dryRun: flags.dryRun },
        ).finally(() => db.close());
        // `versions` has a `--json` of its own, which commander gives the parent: either works.
        if (command.optsWithGlobals<{ json: boolean }>().json) {
          console.log(JSON.stringify(report));
          return;
        }
        console.log(pruneText(report, model ?? 'all models'));
      },
    );

  program
    .command('rollback')
    .description('serve an earlier version of a model (default: the one before the served one)')
    .argument('<model>', 'model id')
    .argument('[version]', 'the version to serve')
    .option('--json', 'print one JSON object instead of the text', false)
    .action(async (model: string, version: string | undefined, flags: { json: boolean }) => {
      const r = await withTraining(config, (t) => t.rollback(model, version));
      if (flags.json) console.log(JSON.stringify({ model, ...r, changed: r.from !== r.to }));
      else if (r.from === r.to) console.log(`${model}: version ${r.to} is served; nothing changed`);
      else console.log(`${model}: version ${r.to} is served now (was ${r.from})`);
    });

  program
    .command('worker')
    .description(
      'run a trainer worker (jobs from BullMQ when REDIS_URL is set, else from the database)',
    )
    .action(async () => {
      const worker = await startStandaloneWorker(config, logger);
      console.log(`trainer worker running (${worker.kind}); Ctrl-C stops it`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void worker.close().finally(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
