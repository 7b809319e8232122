/**
 * Tells chats how their training jobs go: one message per job, edited in place as the job runs
 * (from the progress the workers store with their heartbeats, whichever machine they are on),
 * then the final text and the learning curves as an image. Edits are coalesced to at most one
 * every `minEditMs` per job, never with the same text twice (Telegram refuses "message is not
 * modified" and allows about 20 edits a minute in a group), and run in the background: a slow
 * platform never blocks the bot.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Platform } from '../core/context.ts';
import type { ChatMessenger } from '../core/ports.ts';
import { isLanguage } from '../core/i18n.ts';
import { jobStatusText, translator } from '../core/index.ts';
import type { Database } from '../db/database.ts';
import { REPORT_WINDOW_MS, type TrainingRunRecord } from '../db/training-run-repository.ts';
import type { JobProgress } from './protocol.ts';
import { jobView } from './training-service.ts';
import { readVersionFile, type VersionFolders } from './version-store.ts';

/** Options of {@link startJobReporter}. */
export interface JobReporterOptions {
  readonly db: Pick<Database, 'trainingRuns' | 'modelVersions'>;
  readonly messengers: readonly ChatMessenger[];
  readonly logger: Logger;
  /**
   * This machine's folders: the curves (`history.png`) of a version trained elsewhere are read
   * from the database alone, its folder not written (absent: the version row's path as it is).
   */
  readonly folders?: VersionFolders;
  /** How often the jobs are read, ms (default 1000). */
  readonly pollMs?: number;
  /** Fewest ms between two edits of one message (default 3000). */
  readonly minEditMs?: number;
}

/** A running reporter. */
export interface JobReporter {
  /** Reads the jobs and sends what is due now. */
  tick(): Promise<void>;
  /** A progress event heard before the row has it (BullMQ's `QueueEvents`): shown at once. */
  progress(runId: number, progress: JobProgress): void;
  stop(): Promise<void>;
}

interface Shown {
  text: string;
  at: number;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** `history.png` in a version's folder, if there is one. */
const readCurvesAt = (dir: string | undefined): Promise<Buffer | undefined> =>
  dir === undefined
    ? Promise.resolve(undefined)
    : readFile(path.join(dir, 'history.png')).catch(() => undefined);

/** Starts the reporter. */
export function startJobReporter(o: JobReporterOptions): JobReporter {
  const shown = new Map<number, Shown>();
  const heard = new Map<number, JobProgress>();
  const minEditMs = o.minEditMs ?? 3000;
  const byPlatform = new Map(o.messengers.map((m) => [m.platform, m]));
  let running: Promise<void> | undefined;

  async function report(run: TrainingRunRecord): Promise<void> {
    const n = run.notify;
    if (!n) return;
    const platform = n.platform as Platform;
    const messenger = byPlatform.get(platform);
    const { chatId, messageId } = n;
    if (!messenger || typeof chatId !== 'string' || typeof messageId !== 'string') return;
    const lang = typeof n.lang === 'string' && isLanguage(n.lang) ? n.lang : 'en';
    const t = translator(lang);
    const final = FINAL.has(run.status);
    const place =
      run.status === 'queued' ? await o.db.trainingRuns.queuePosition(run.id) : undefined;
    const view = jobView(run);
    const event = run.status === 'running' ? heard.get(run.id) : undefined;
    const text = jobStatusText(event ? { ...view, progress: event } : view, t, lang, place);
    const last = shown.get(run.id);
    const now = Date.now();
    if (!last && run.status === 'queued') {
      // The /retrain answer already says this: editing it to the same text is an error.
      shown.set(run.id, { text, at: now });
      return;
    }
    if (last?.text !== text && (final || !last || now - last.at >= minEditMs)) {
      shown.set(run.id, { text, at: now });
      try {
        await messenger.editText(chatId, messageId, text);
      } catch (e) {
        if (!/not modified/i.test((e as Error).message)) {
          o.logger.warn({ err: e, job: run.id }, 'editing the progress message failed');
        }
      }
    }
    if (!final) return;
    if (run.status === 'succeeded' && run.version !== null) {
      const version = run.version;
      // Only the curves: the version's weights are neither read nor written here.
      const png = o.folders
        ? await readVersionFile(
            o.db.modelVersions,
            o.folders,
            run.modelId,
            version,
            'history.png',
          ).catch((e: unknown) => {
            o.logger.warn({ err: e, job: run.id }, 'the new version cannot be read');
            return undefined;
          })
        : await readCurvesAt((await o.db.modelVersions.get(run.modelId, version))?.path);
      if (png) {
        const caption = t('job.curves_caption', {
          model: run.modelId,
          version: run.version,
          job: run.id,
        });
        await messenger
          .sendImage(chatId, png, caption, messageId)
          .catch((e: unknown) =>
            o.logger.warn({ err: e, job: run.id }, 'sending the curves failed'),
          );
      }
    }
    await o.db.trainingRuns.clearNotify(run.id);
    shown.delete(run.id);
    heard.delete(run.id);
  }

  async function tickOnce(): Promise<void> {
    const runs = await o.db.trainingRuns.listToReport(REPORT_WINDOW_MS);
    await Promise.all(
      runs.map((r) =>
        report(r).catch((e: unknown) => o.logger.warn({ err: e, job: r.id }, 'job report failed')),
      ),
    );
  }

  const tick = (): Promise<void> => {
    running ??= tickOnce()
      .catch((e: unknown) => o.logger.warn({ err: e }, 'reading jobs to report failed'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => void tick(), o.pollMs ?? 1000);
  timer.unref();
  return {
    tick,
    progress(runId, p) {
      heard.set(runId, p);
      void tick();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
