/**
 * The trainer as the core sees it: a port (`TrainingService`) that the bot's entry point
 * implements over the job queue (`src/jobs/`), and the texts of jobs and versions. The core
 * never trains: it asks for a job and shows what the queue records.
 */
import { UserError } from '../errors.ts';
import { splitArgs, type ParseResult } from './args.ts';
import type { Literal, Platform } from './context.ts';
import { formatNumber, formatPercent, type Language, type Translate } from './i18n.ts';
import type { UserKey } from './ports.ts';

/** A job's states, as the queue records them. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** What `/retrain` asked for. */
export interface RetrainRequest {
  readonly model: string;
  readonly epochs?: number;
  readonly lr?: number;
  readonly batch?: number;
  readonly force?: boolean;
  /** issue 16: `class`: fine-tune the served version on the class's labelled photos. */
  readonly with?: 'class';
}

/** issue 16: what a `with=class` job measured (accuracies 0..1) and decided. */
export interface ClassFinetuneView {
  readonly parentVersion: string;
  readonly heldOutPhotos: number;
  /** The held-out students (`platform:userId`). */
  readonly heldOutStudents: readonly string[];
  readonly heldOutCorrect: { readonly before: number; readonly after: number };
  readonly before: { readonly classHeldOut: number; readonly mnistTest: number };
  readonly after: { readonly classHeldOut: number; readonly mnistTest: number };
  readonly mnistTestSamples: number;
  /** The class rule's decision before `force`, and why. */
  readonly promote: boolean;
  readonly reason: 'improved' | 'class-not-improved' | 'mnist-dropped';
  readonly maxMnistDrop: number;
}

/** Progress of a running job. */
export interface JobProgressView {
  readonly epoch: number;
  readonly epochs: number;
  readonly batch: number;
  readonly batches: number;
  readonly loss: number;
  readonly acc: number;
  readonly etaSeconds: number;
}

/** A training job, for chats and the CLI. */
export interface JobView {
  readonly id: number;
  readonly modelId: string;
  readonly state: JobState;
  readonly params: Omit<RetrainRequest, 'model'>;
  /** Who asked (`platform:id`), or `cli`. */
  readonly requester: string;
  /** Their display name, when their chat gave one. */
  readonly requesterName?: string;
  readonly progress: JobProgressView | null;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly attempts: number;
  /** The version it produced. */
  readonly version: string | null;
  /** Test accuracy of the new version, the served one's, and whether it was promoted. */
  readonly result: {
    readonly testAccuracy: number;
    readonly servedVersion: string;
    readonly servedAccuracy: number | null;
    readonly promoted: boolean;
    readonly forced: boolean;
    /** issue 16: present for a `with=class` job. */
    readonly classFinetune?: ClassFinetuneView;
  } | null;
  /** Why it failed (`nan`, `disk`, `dataset`, `worker`, `parameter`, `other`) and the detail. */
  readonly failure: {
    readonly reason: string;
    readonly message: string;
    readonly command?: string;
    /** Figures of the reason (`classdata`: count, needed, missing). */
    readonly params?: Readonly<Record<string, number>>;
  } | null;
  readonly backend: string | null;
  readonly device: string | null;
}

/** A model version, for `/versions`. */
export interface VersionView {
  readonly modelId: string;
  readonly version: string;
  readonly testAccuracy: number | null;
  readonly createdAt: Date;
  /** `platform:id`, `cli` or `shipped`. */
  readonly createdBy: string | null;
  /** The display name of who made it, when their chat gave one (see `JobView.requesterName`). */
  readonly createdByName?: string;
  readonly params: Readonly<Record<string, unknown>> | null;
  readonly jobId: number | null;
  readonly parentVersion: string | null;
  readonly served: boolean;
}

/** Why a version was kept. */
export type KeptReason =
  /** Version 0: its files are the repository's `models/<id>/`. */
  | 'shipped'
  /** The bots answer with it. */
  | 'served'
  /** `/rollback <model>` without a version goes back to it (the one before the served one). */
  | 'rollback'
  /**
   * The served version's parent: served until it was promoted, and what a bot still answers
   * with until it has loaded the new one (seconds; a model it has not loaded yet is read from
   * that folder then).
   */
  | 'previous'
  /** One of the newest `keep`. */
  | 'recent'
  /** Its job is still running (its files are being stored), or a job of the model is running. */
  | 'job'
  /**
   * Its job's report is not sent yet: the reporter still has to send the learning curves
   * (`history.png`) to the chat that asked for the job (kept at most the reporter's window).
   */
  | 'report';

/** What `/versions <model> prune N` did (see `pruneVersions` in `src/jobs/version-retention.ts`). */
export interface VersionsPruned {
  /** Versions removed, in number order. */
  readonly removed: readonly string[];
  /** Versions kept, and why. */
  readonly kept: readonly {
    readonly version: string;
    readonly reason: KeptReason;
  }[];
  /** Bytes freed in the database and in this machine's `DATA_DIR`. */
  readonly dbBytes: number;
  readonly diskBytes: number;
}

/** Where a job reports its progress: the message to edit. */
export interface ProgressMessage {
  readonly platform: Platform;
  readonly chatId: string;
  readonly messageId: string;
  readonly lang: Language;
}

/** The configured limits of `/retrain`. */
export interface TrainingLimits {
  readonly maxEpochs: number;
  readonly maxBatch: number;
  readonly jobsPerInstructor: number;
  /** issue 16: fewest labelled photos a `with=class` job needs (`CLASS_MIN_PHOTOS`; default 50). */
  readonly classMinPhotos?: number;
}

/** The trainer, as commands and the CLI use it. */
export interface TrainingService {
  readonly limits: TrainingLimits;
  /** The models that can be retrained (those with a training recipe). */
  trainable(): Promise<readonly string[]>;
  /**
   * Queues a job. A job of a model that is being trained waits behind it.
   * @returns the job and its place in the queue (1: next).
   * @throws {UserError} `job.limit` when the requester has too many jobs queued or running;
   *   for `with=class`: `retrain.class_model` for a model that is not a LeNet digit model,
   *   `classdata.not_enough` with fewer labelled photos than `limits.classMinPhotos`.
   */
  enqueue(
    request: RetrainRequest,
    requester: (UserKey & { readonly name?: string }) | 'cli',
  ): Promise<{ job: JobView; place: number }>;
  /** Reports the job's progress by editing this message. */
  watch(jobId: number, message: ProgressMessage): Promise<void>;
  /** Queued and running jobs, then the latest finished ones. */
  list(): Promise<JobView[]>;
  get(jobId: number): Promise<JobView | undefined>;
  /** Cancels a queued job, or stops a running one (its process is killed within seconds). */
  cancel(jobId: number): Promise<JobView | undefined>;
  /** A model's versions, oldest first (version 0: the shipped one). */
  versions(modelId: string): Promise<VersionView[]>;
  /**
   * Serves `version`, or without it the version before the served one.
   * @throws {UserError} `version.unknown`.
   * @returns the versions before and after; equal when nothing changed.
   */
  rollback(modelId: string, version?: string): Promise<{ from: string; to: string }>;
  /**
   * Deletes a model's versions but the newest `keep` trained ones, version 0, the served one and
   * the one `rollback` without a version goes back to (all of them while a job of it runs).
   * Absent where the service cannot delete.
   * @throws {UserError} `version.unknown` for a model without versions.
   */
  prune?(modelId: string, keep: number): Promise<VersionsPruned>;
}

/**
 * Parses `/retrain <model> [with=class] [epochs=N] [lr=X] [batch=N] [force]` and checks it
 * against the limits. A bare `class` is `with=class` (Discord's `with` option sends its value).
 * @returns `argument.invalid` for an unknown word or a malformed value; `job.limit` naming the
 *   limit for a value over it; `model.unknown` for a model that cannot be retrained.
 * @example
 * parseRetrainArgs('lenet-mnist epochs=3 lr=0.001', ['lenet-mnist'], limits);
 * // { ok: true, value: { model: 'lenet-mnist', epochs: 3, lr: 0.001 } }
 */
export function parseRetrainArgs(
  raw: string,
  trainable: readonly string[],
  limits: TrainingLimits,
  usage = '/retrain <model> [with=class] [epochs=N] [lr=X] [batch=N] [force]',
): ParseResult<RetrainRequest> {
  const fail = (error: UserError): ParseResult<RetrainRequest> => ({ ok: false, error });
  const invalid = (value: string): ParseResult<RetrainRequest> =>
    fail(new UserError('argument.invalid', `cannot parse "${value}"`, { value, usage }));
  const [first, ...rest] = splitArgs(raw);
  if (first === undefined) return invalid(raw.trim() || '∅');
  const model = first.toLowerCase();
  if (!trainable.includes(model)) {
    return fail(
      new UserError('model.unknown', `cannot retrain "${first}"`, {
        model: first,
        known: trainable.join(', '),
      }),
    );
  }
  let epochs: number | undefined;
  let lr: number | undefined;
  let batch: number | undefined;
  let force = false;
  let withClass = false;
  for (const word of rest) {
    const w = word.toLowerCase();
    if (w === 'force') {
      force = true;
      continue;
    }
    if (w === 'with=class' || w === 'class') {
      withClass = true;
      continue;
    }
    const m = /^(epochs|lr|batch)=(.+)$/.exec(w);
    if (!m?.[1] || m[2] === undefined) return invalid(word);
    const value = Number(m[2]);
    if (m[1] === 'lr') {
      if (!Number.isFinite(value) || value <= 0 || value > 1) return invalid(word);
      lr = value;
      continue;
    }
    if (!Number.isInteger(value) || value < 1) return invalid(word);
    const [limit, setting] =
      m[1] === 'epochs'
        ? [limits.maxEpochs, 'TRAIN_MAX_EPOCHS']
        : [limits.maxBatch, 'TRAIN_MAX_BATCH'];
    if (value > limit) {
      return fail(
        new UserError('job.limit', `${m[1]}=${value} is over ${setting}=${limit}`, {
          what: m[1],
          value,
          limit,
          setting,
        }),
      );
    }
    if (m[1] === 'epochs') epochs = value;
    else batch = value;
  }
  return {
    ok: true,
    value: {
      model,
      ...(epochs === undefined ? {} : { epochs }),
      ...(lr === undefined ? {} : { lr }),
      ...(batch === undefined ? {} : { batch }),
      ...(force ? { force } : {}),
      ...(withClass ? { with: 'class' as const } : {}),
    },
  };
}

/** `epochs=3 lr=0.001 batch=64 force`, or the localized "defaults". */
export function paramsText(p: JobView['params']): string {
  const parts = [
    p.with === undefined ? '' : `with=${p.with}`,
    p.epochs === undefined ? '' : `epochs=${p.epochs}`,
    p.lr === undefined ? '' : `lr=${p.lr}`,
    p.batch === undefined ? '' : `batch=${p.batch}`,
    p.force ? 'force' : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : '—';
}

/** A duration in seconds as `1:05:09` / `5:09`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

const accuracy = (v: number | null, lang: Language): string =>
  v === null ? '—' : formatPercent(v, lang, 2);

/**
 * The text of a job's progress message: queued, running (epoch, batch, loss, accuracy, ETA),
 * or its final state (the decision with both accuracies, or why it failed).
 * @param o.editable false where the text is not a message edited as the job trains (a terminal,
 *   a chat that cannot edit): the queued text then makes no such promise.
 */
export function jobStatusText(
  job: JobView,
  t: Translate,
  lang: Language,
  place?: number,
  o: { readonly editable?: boolean } = {},
): string {
  const base = { job: job.id, model: job.modelId };
  switch (job.state) {
    case 'queued':
      return t(o.editable === false ? 'retrain.queued_plain' : 'retrain.queued', {
        ...base,
        params: paramsText(job.params),
        place: place ?? 1,
      });
    case 'running': {
      const p = job.progress;
      if (!p) return t('job.progress_start', base);
      if (p.epoch === p.epochs && p.batch === p.batches) {
        // Training is over; the test-set evaluation and the save can take a while: say so.
        return t('job.progress_finishing', {
          ...base,
          epochs: p.epochs,
          loss: p.loss.toFixed(4),
          acc: formatPercent(p.acc, lang, 1),
        });
      }
      return t('job.progress', {
        ...base,
        epoch: p.epoch,
        epochs: p.epochs,
        batch: p.batch,
        batches: p.batches,
        loss: p.loss.toFixed(4),
        acc: formatPercent(p.acc, lang, 1),
        eta: formatDuration(p.etaSeconds),
      });
    }
    case 'succeeded': {
      const r = job.result;
      if (!r) return t('job.state.succeeded');
      const params = {
        ...base,
        version: job.version ?? '?',
        accuracy: accuracy(r.testAccuracy, lang),
        served: accuracy(r.servedAccuracy, lang),
        servedVersion: r.servedVersion,
      };
      if (r.classFinetune) return classResultText(job, r.classFinetune, r, t, lang);
      if (!r.promoted) return t('job.kept', params);
      return t(r.forced ? 'job.promoted_forced' : 'job.promoted', params);
    }
    case 'cancelled':
      return t('job.cancelled', base);
    case 'failed': {
      const f = job.failure;
      const reason =
        f?.reason === 'nan'
          ? t('job.reason.nan')
          : f?.reason === 'disk'
            ? t('job.reason.disk')
            : f?.reason === 'dataset'
              ? t('job.reason.dataset', { command: f.command ?? 'bin/cnn-classroom download' })
              : f?.reason === 'worker'
                ? t('job.reason.worker', { attempts: job.attempts })
                : f?.reason === 'classdata'
                  ? t('job.reason.classdata', { ...f.params })
                  : t('job.reason.other', { message: f?.message ?? '?' });
      return t('job.failed', { ...base, reason });
    }
  }
}

/**
 * issue 16: the final text of a `with=class` job: held-out real-photo accuracy before → after
 * (with counts), MNIST test before → after, and the decision of the class rule (or `force`).
 */
function classResultText(
  job: JobView,
  c: ClassFinetuneView,
  r: NonNullable<JobView['result']>,
  t: Translate,
  lang: Language,
): string {
  const pct = (v: number): string => formatPercent(v, lang, 2);
  const figures = t('job.class.figures', {
    job: job.id,
    model: job.modelId,
    version: job.version ?? '?',
    parent: c.parentVersion,
    before: pct(c.before.classHeldOut),
    after: pct(c.after.classHeldOut),
    correctBefore: c.heldOutCorrect.before,
    correctAfter: c.heldOutCorrect.after,
    photos: c.heldOutPhotos,
    students: c.heldOutStudents.length,
    mnistBefore: pct(c.before.mnistTest),
    mnistAfter: pct(c.after.mnistTest),
    mnistSamples: c.mnistTestSamples,
  });
  const points = formatNumber(c.maxMnistDrop * 100, lang, 1);
  const base = { model: job.modelId, version: job.version ?? '?', parent: r.servedVersion, points };
  const decision = r.promoted
    ? c.promote
      ? t('job.class.promoted', base)
      : t('job.class.promoted_forced', base)
    : c.reason === 'mnist-dropped'
      ? t('job.class.kept_mnist', base)
      : t('job.class.kept_class', base);
  return `${figures}\n${decision}`;
}

/** One line of `/jobs`; `literal` as in {@link authorText}. */
export function jobLine(
  job: JobView,
  t: Translate,
  lang: Language,
  now = Date.now(),
  literal?: Literal,
): string {
  const p = job.progress;
  const progress =
    job.state === 'running' && p
      ? `${p.epoch}/${p.epochs} · ${p.batch}/${p.batches}`
      : job.state === 'succeeded' && job.result
        ? `v${job.version ?? '?'} ${accuracy(job.result.testAccuracy, lang)}`
        : paramsText(job.params);
  const start = job.startedAt?.getTime();
  const end = job.finishedAt?.getTime() ?? now;
  return t('jobs.line', {
    job: job.id,
    model: job.modelId,
    state: t(`job.state.${job.state}`),
    progress,
    who: authorText(job.requester, t, job.requesterName, literal),
    duration: start === undefined ? '—' : formatDuration((end - start) / 1000),
  });
}

/** The most characters of a person's name that a `/jobs` or `/versions` line shows. */
export const NAME_MAX = 32;

/**
 * A display name for one line: whitespace (line breaks included) collapsed to single spaces,
 * cut to {@link NAME_MAX} characters (code points) with an ellipsis.
 *
 * @example
 * shortName('Anna\n Petrova'); // 'Anna Petrova'
 */
export function shortName(name: string): string {
  const one = name.replace(/\s+/g, ' ').trim();
  const chars = [...one];
  return chars.length <= NAME_MAX
    ? one
    : `${chars
        .slice(0, NAME_MAX - 1)
        .join('')
        .trimEnd()}…`;
}

/**
 * Who made a version or asked for a job, as people read it: the shipped version 0's `shipped` is
 * "shipped with the bot"; the web chat's `web:<random id>` is the name its user chatted under,
 * or "web chat operator" without one (`web` is the web chat's stand-in for no name); Telegram's
 * and Discord's `platform:id` is the display name they had when they asked (`requesterName`),
 * or stays `platform:id` without one (jobs from before names were kept) or when the name is just
 * the id (a Telegram user without a name); `cli` is shown as stored. Names are shortened
 * ({@link shortName}) and passed through `literal` (the chat's escaping) when given.
 */
export function authorText(
  stored: string | null,
  t: Translate,
  name?: string,
  literal: Literal = (text) => text,
): string {
  if (stored === null) return '—';
  if (stored === 'shipped') return t('versions.shipped');
  const shown = name === undefined ? '' : shortName(name);
  if (stored.startsWith('web:')) return shown && shown !== 'web' ? literal(shown) : t('who.web');
  const colon = stored.indexOf(':');
  const id = stored.slice(colon + 1);
  if ((stored.startsWith('telegram:') || stored.startsWith('discord:')) && shown && shown !== id) {
    return literal(shown);
  }
  return stored;
}

/** One line of `/versions`; `literal` as in {@link authorText}. */
export function versionLine(
  v: VersionView,
  t: Translate,
  lang: Language,
  literal?: Literal,
): string {
  const params = paramsText(v.params ?? {});
  return t('versions.line', {
    mark: v.served ? '▶' : '·',
    version: v.version,
    accuracy: accuracy(v.testAccuracy, lang),
    date: v.createdAt.toISOString().slice(0, 16).replace('T', ' '),
    who: authorText(v.createdBy, t, v.createdByName, literal),
    params,
  });
}
