/**
 * The embedded trainer worker: the database is the queue. It claims one job at a time with a
 * lease (`training_runs.lease_*`), renews it with heartbeats that also store the progress, runs
 * the job in a fresh child process, and turns the result into a model version. A worker that
 * dies leaves its lease to expire: the next claim resumes the job from its checkpoint, or fails
 * it with the reason after `maxAttempts` runs.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ClassData } from '../core/ports.ts';
import { DatabaseError } from '../db/errors.ts';
import type { ModelVersionRepository } from '../db/model-version-repository.ts';
import type { JsonObject, TrainingRunRecord, TrainingRuns } from '../db/training-run-repository.ts';
import { readModelMeta } from '../ml/model-meta.ts';
import type { ImageLimits } from '../ml/preprocess/for-model.ts';
import type { ClassFinetuneJobSpec } from '../trainer/class-finetune-job.ts';
import type { ClassPhoto } from '../trainer/class-finetune.ts';
import type { TrainingJobSpecInput } from '../trainer/job-spec.ts';
import { attachedClassPhotos, classPhotos } from './class-photos.ts';
import { JobFailure, type JobProgress, type JobSpec } from './protocol.ts';
import { runJobInChild, type ChildJobResult, type JobRunner } from './run-in-child.ts';
import { retrainParamsOf } from './params.ts';
import { pruneVersions, sweepAbandonedVersions } from './version-retention.ts';
import {
  addVersion,
  checkpointDir,
  materializeVersion,
  servedVersionOf,
  stagingDir,
  type VersionDecision,
  type VersionFolders,
} from './version-store.ts';

/** Options of {@link createDbWorker} and {@link executeJob}. */
export interface TrainerWorkerOptions {
  readonly trainingRuns: TrainingRuns;
  readonly modelVersions: ModelVersionRepository;
  readonly folders: VersionFolders;
  /** A read-only data folder searched after `dataDir` (`CNN_SHARED_DATA`). */
  readonly sharedDataDir?: string;
  readonly logger: Logger;
  /** Lease length, ms; heartbeats renew it at a third of it (at most every 2 s). */
  readonly leaseMs: number;
  readonly maxAttempts: number;
  /** How often an idle worker looks for a job, ms (default 1000). */
  readonly pollMs?: number;
  /** Runs a job (default: {@link runJobInChild}). */
  readonly runner?: JobRunner;
  /** Settings merged into every job's spec (tests: no augmentation on a tiny fixture). */
  readonly specDefaults?: Partial<TrainingJobSpecInput>;
  /** Called with each progress report (the BullMQ worker forwards it as a job event). */
  readonly onProgress?: (progress: JobProgress) => void;
  /** Called with the child's pid when a job starts (tests). */
  readonly onSpawn?: (jobId: number, pid: number) => void;
  /** This worker's name in leases (default `host:pid:random`). */
  readonly owner?: string;
  /** issue 16: the class's labelled photos, for `with=class` jobs (absent: such jobs fail). */
  readonly classData?: ClassData;
  /** issue 16: the bot's upload limits, which the class photos' preprocessing applies. */
  readonly imageLimits?: ImageLimits;
  /** issue 16: fewest usable labelled photos of a `with=class` job (`CLASS_MIN_PHOTOS`). */
  readonly classMinPhotos?: number;
  /**
   * Retention (`MODEL_VERSIONS_KEEP`): after a job's version is recorded, the model's versions
   * are pruned to the newest this many (and the protected ones). Absent: all are kept.
   */
  readonly versionsKeep?: number;
}

/** A running worker. */
export interface TrainerWorker {
  readonly owner: string;
  /** The job being run now, if any. */
  readonly current: number | undefined;
  /**
   * Stops claiming; a job in progress is stopped (its process killed) and given back to the
   * queue, to resume from its checkpoint on the next start.
   */
  close(): Promise<void>;
}

/** A plain object as the JSON columns take it. */
function toJson(o: object): JsonObject {
  return JSON.parse(JSON.stringify(o)) as JsonObject;
}

/** The spec of a job's run: its parameters, the folders, resume from its own checkpoint. */
export function jobSpec(
  run: TrainingRunRecord,
  o: Pick<TrainerWorkerOptions, 'folders' | 'sharedDataDir' | 'specDefaults'>,
): TrainingJobSpecInput {
  const p = retrainParamsOf(run.params);
  return {
    model: run.modelId,
    dataDir: o.folders.dataDir,
    ...(o.sharedDataDir === undefined ? {} : { sharedDataDir: o.sharedDataDir }),
    ...(p.epochs === undefined ? {} : { epochs: p.epochs }),
    ...(p.batch === undefined ? {} : { batchSize: p.batch }),
    ...(p.lr === undefined ? {} : { learningRate: p.lr }),
    ...o.specDefaults,
    outputDir: stagingDir(o.folders, run.modelId, run.id),
    checkpointDir: checkpointDir(o.folders, run.id),
    resume: true,
    force: true,
  };
}

/** The class photos of a job queued without them attached, read from the class data now. */
async function legacyClassPhotos(
  run: TrainingRunRecord,
  o: Pick<TrainerWorkerOptions, 'classData' | 'logger'>,
  classNames: readonly string[],
): Promise<ClassPhoto[]> {
  if (!o.classData) throw new Error('this worker has no class data for with=class jobs');
  return classPhotos(o.classData, classNames, (submission, err) => {
    o.logger.warn({ err, job: run.id, submission }, 'class photo unreadable: left out');
  });
}

/**
 * issue 16: the spec of a `with=class` job: the served version's folder (fine-tuned, never
 * changed), the class's photos that train by default (attached to the job when it was queued,
 * read from the database: issue 14 follow-up), and the job's parameters (`specDefaults` too:
 * tests' short settings).
 * @throws {Error} when a job queued without its photos meets a worker with no class data.
 */
export async function classJobSpec(
  run: TrainingRunRecord,
  o: Pick<
    TrainerWorkerOptions,
    | 'folders'
    | 'sharedDataDir'
    | 'specDefaults'
    | 'modelVersions'
    | 'trainingRuns'
    | 'classData'
    | 'imageLimits'
    | 'classMinPhotos'
    | 'logger'
  >,
): Promise<ClassFinetuneJobSpec> {
  const p = retrainParamsOf(run.params);
  const served = await servedVersionOf(o.modelVersions, o.folders, run.modelId);
  // The served version may have been trained on another machine: written here from the database.
  const { dir: baseDir } = await materializeVersion(
    o.modelVersions,
    o.folders,
    run.modelId,
    served.version,
  );
  const meta = await readModelMeta(baseDir);
  // issue 14 follow-up: a job queued with its photos attached reads them from the database (this
  // worker may have no image store); one queued before that reads the class data as it was.
  const photos =
    typeof run.params.classPhotos === 'number'
      ? attachedClassPhotos(await o.trainingRuns.photos(run.id), meta.classNames)
      : await legacyClassPhotos(run, o, meta.classNames);
  const d = o.specDefaults ?? {};
  const epochs = p.epochs ?? d.epochs;
  const batchSize = p.batch ?? d.batchSize;
  const learningRate = p.lr ?? d.learningRate;
  return {
    kind: 'class-finetune',
    model: run.modelId,
    baseDir,
    baseVersion: served.version,
    dataDir: o.folders.dataDir,
    ...(o.sharedDataDir === undefined ? {} : { sharedDataDir: o.sharedDataDir }),
    outputDir: stagingDir(o.folders, run.modelId, run.id),
    checkpointDir: checkpointDir(o.folders, run.id),
    photos,
    limits: o.imageLimits ?? { maxBytes: 20_000_000, maxPixels: 16_000_000 },
    ...(o.classMinPhotos === undefined ? {} : { minPhotos: o.classMinPhotos }),
    ...(epochs === undefined ? {} : { epochs }),
    ...(batchSize === undefined ? {} : { batchSize }),
    ...(learningRate === undefined ? {} : { learningRate }),
    ...(d.seed === undefined ? {} : { seed: d.seed }),
    ...(d.calibrate === undefined ? {} : { calibrate: d.calibrate }),
  };
}

/**
 * Runs one claimed job to its end: heartbeats with progress, cancel and lost-lease checks,
 * then the version decision, and the job's final state. Never throws for the job's own failures
 * (they are recorded); `stop` gives the job back to the queue instead.
 * @returns `'given back'` when the row went back to `queued` (the worker stopped, or the job's
 *   process died and it resumes from its checkpoint), so a BullMQ worker must queue it again;
 *   else `'ended'`.
 */
export async function executeJob(
  run: TrainingRunRecord,
  owner: string,
  o: TrainerWorkerOptions,
  stop: AbortSignal,
): Promise<'given back' | 'ended'> {
  const end = await runAndRecord(run, owner, o, stop);
  // A failed job's pending version (this worker's, or one a crashed worker left) goes now.
  await sweepAbandonedVersions(o, o.folders, o.logger);
  return end;
}

/** {@link executeJob} but the clean-up after it. */
async function runAndRecord(
  run: TrainingRunRecord,
  owner: string,
  o: TrainerWorkerOptions,
  stop: AbortSignal,
): Promise<'given back' | 'ended'> {
  const log = o.logger.child({ job: run.id, model: run.modelId });
  const abort = new AbortController();
  let progress: JobProgress | undefined;
  let why: 'cancel' | 'lost' | 'stop' | undefined;
  const onStop = (): void => {
    why ??= 'stop';
    abort.abort(new Error('worker shutting down'));
  };
  stop.addEventListener('abort', onStop, { once: true });
  const beat = async (): Promise<void> => {
    const r = await o.trainingRuns.heartbeat(run.id, owner, o.leaseMs, progress && { ...progress });
    if (r.lost || r.cancel) {
      why ??= r.lost ? 'lost' : 'cancel';
      abort.abort(new Error(r.lost ? 'lease lost' : 'cancelled'));
    }
  };
  const timer = setInterval(
    () => void beat().catch((e: unknown) => log.warn({ err: e }, 'heartbeat failed')),
    Math.max(200, Math.min(2000, o.leaseMs / 3)),
  );
  const params = retrainParamsOf(run.params);
  log.info({ attempt: run.attempts, params }, 'job started');
  let result: ChildJobResult;
  try {
    const spec: JobSpec = params.with === 'class' ? await classJobSpec(run, o) : jobSpec(run, o);
    result = await (o.runner ?? runJobInChild)(spec, {
      signal: abort.signal,
      callbacks: {
        onBackend: (backend, device) => {
          void o.trainingRuns.setBackend(run.id, backend, device).catch(() => undefined);
        },
        onProgress: (p) => {
          progress = p;
          o.onProgress?.(p);
        },
        onSpawn: (pid) => o.onSpawn?.(run.id, pid),
      },
    });
  } catch (e) {
    clearInterval(timer);
    stop.removeEventListener('abort', onStop);
    if (why === 'stop') {
      await o.trainingRuns.release(run.id, owner);
      log.info('job given back to the queue');
      return 'given back';
    } else if (why === 'cancel') {
      await o.trainingRuns.markCancelled(run.id).catch(() => undefined);
      log.info('job cancelled');
    } else if (why === 'lost') {
      log.warn('job lease lost: another worker has it');
    } else if (
      e instanceof JobFailure &&
      e.reason === 'worker' &&
      run.attempts < o.maxAttempts &&
      !stop.aborted
    ) {
      // The job's process died (killed, out of memory): run it again from its checkpoint.
      await o.trainingRuns.release(run.id, owner, { countsAsTry: true });
      log.warn({ attempt: run.attempts, detail: e.message }, 'job process died: resuming');
      return 'given back';
    } else {
      const f = e instanceof JobFailure ? e : new JobFailure('other', (e as Error).message);
      await o.trainingRuns
        .markFailed(run.id, `${f.reason}: ${f.message}`, {
          reason: f.reason,
          ...(f.command === undefined ? {} : { command: f.command }),
          ...(f.params === undefined ? {} : { params: { ...f.params } }),
          ...(progress ? { progress: { ...progress } } : {}),
        })
        .catch(() => undefined);
      log.warn({ reason: f.reason, detail: f.message }, 'job failed');
    }
    await rm(stagingDir(o.folders, run.modelId, run.id), { recursive: true, force: true });
    return 'ended';
  }
  // Heartbeats go on while the version is stored (tens of MB, a part per transaction): its
  // lease must not expire meanwhile, and the version is made visible only under it.
  stop.removeEventListener('abort', onStop);
  try {
    const metrics: JsonObject = {
      testAccuracy: result.testAccuracy,
      seconds: result.seconds,
      history: result.history.map((r) => ({ ...r })),
      ...(result.classFinetune ? { classFinetune: toJson(result.classFinetune) } : {}),
    };
    const decision: VersionDecision = await addVersion(o.modelVersions, o.folders, {
      jobId: run.id,
      modelId: run.modelId,
      stagingDir: result.modelDir,
      testAccuracy: result.testAccuracy,
      force: params.force === true,
      ...(result.classFinetune ? { promote: result.classFinetune.promote } : {}),
      params: { ...params },
      metrics,
      datasetFingerprint: result.datasetFingerprint,
      createdBy: typeof run.params.requester === 'string' ? run.params.requester : 'cli',
      lease: { jobId: run.id, owner, leaseMs: o.leaseMs },
    });
    await o.trainingRuns.finishSucceeded(
      run.id,
      owner,
      {
        ...metrics,
        version: decision.version,
        servedVersion: decision.servedVersion,
        servedAccuracy: decision.servedAccuracy,
        promoted: decision.promoted,
        forced: params.force === true,
        ...(result.classFinetune ? { classFinetune: toJson(result.classFinetune) } : {}),
      },
      decision.version,
    );
    clearInterval(timer);
    // The job's folder: the checkpoint and its curves (`checkpoint-history.png`) beside it.
    await rm(path.dirname(checkpointDir(o.folders, run.id)), { recursive: true, force: true });
    log.info({ ...decision, testAccuracy: result.testAccuracy }, 'job finished');
    if (o.versionsKeep !== undefined) {
      // The job is recorded: a retention failure (database gone for a moment) only waits for
      // the next job or `versions prune`; nothing is deleted without its row's transaction.
      await pruneVersions(o, o.folders, {
        modelId: run.modelId,
        keep: o.versionsKeep,
        afterJobId: run.id,
      }).then(
        (r) =>
          r.removed.length > 0 &&
          log.info(
            {
              removed: r.removed.map((v) => v.version),
              dbBytes: r.dbBytes,
              diskBytes: r.diskBytes,
            },
            'old versions pruned (MODEL_VERSIONS_KEEP)',
          ),
        (e: unknown) => log.warn({ err: e }, 'pruning old versions failed'),
      );
    }
  } catch (e) {
    clearInterval(timer);
    if (e instanceof DatabaseError && e.code === 'cancelled') {
      // `/cancel` while the version was stored: the job is still this worker's to end, as
      // cancelled (its chat was told so); nothing was recorded or served.
      await o.trainingRuns.markCancelled(run.id).catch(() => undefined);
      await rm(result.modelDir, { recursive: true, force: true }).catch(() => undefined);
      log.info(
        `job ${run.id} cancelled while its version was stored: the version is discarded, the served model is unchanged`,
      );
    } else if (e instanceof DatabaseError && (e.code === 'lease_lost' || e.code === 'removed')) {
      // The job is no longer this worker's (failed with its lease spent, cancelled, or another
      // worker's now): its record stays as that left it; this version is not kept anywhere.
      log.error(
        { err: e, code: e.code },
        `job ${run.id}'s new version was discarded: ${e.message}. Nothing was recorded or served; the job's state is left as it is`,
      );
      const now = await o.trainingRuns.get(run.id).catch(() => undefined);
      if (now?.status !== 'running') {
        await rm(result.modelDir, { recursive: true, force: true }).catch(() => undefined);
      }
    } else {
      log.error({ err: e }, 'recording the finished job failed');
      const code = (e as { code?: unknown }).code;
      const reason = code === 'ENOSPC' ? 'disk' : 'other';
      await o.trainingRuns
        .markFailed(run.id, `${reason}: ${(e as Error).message}`, { reason })
        .catch(() => undefined);
    }
  }
  return 'ended';
}

/**
 * Starts the embedded trainer worker: one job at a time, each in a fresh child process.
 *
 * @example
 * const worker = createDbWorker({ trainingRuns: db.trainingRuns, modelVersions: db.modelVersions,
 *   folders: { modelsDir, dataDir }, logger, leaseMs: 60_000, maxAttempts: 3 });
 * // on shutdown:
 * await worker.close();
 */
export function createDbWorker(o: TrainerWorkerOptions): TrainerWorker {
  const owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const stop = new AbortController();
  let current: number | undefined;
  let wake: (() => void) | undefined;
  const log = o.logger.child({ worker: owner });

  const loop = async (): Promise<void> => {
    // What a worker that crashed before this one started left pending.
    await sweepAbandonedVersions(o, o.folders, log);
    while (!stop.signal.aborted) {
      try {
        const { run, failed } = await o.trainingRuns.claim(owner, o.leaseMs, o.maxAttempts);
        for (const f of failed) log.warn({ job: f.id, error: f.error }, 'job failed: worker died');
        if (failed.length > 0) await sweepAbandonedVersions(o, o.folders, log);
        if (run) {
          current = run.id;
          await executeJob(run, owner, { ...o, logger: log }, stop.signal);
          current = undefined;
          continue;
        }
      } catch (e) {
        current = undefined;
        log.error({ err: e }, 'trainer worker: claiming a job failed');
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.pollMs ?? 1000);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  };
  const done = loop();
  log.info('trainer worker started');
  return {
    owner,
    get current() {
      return current;
    },
    async close() {
      stop.abort();
      wake?.();
      await done;
      log.info('trainer worker stopped');
    },
  };
}
