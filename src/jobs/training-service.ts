/**
 * The core's `TrainingService` port over the database (the queue and the versions), shared by
 * the chat commands and the CLI (`jobs`, `versions`, `rollback`). Queuing a job writes its row;
 * a trainer worker (embedded, or `npm run worker` elsewhere through BullMQ) runs it.
 */
import path from 'node:path';
import type { ClassData } from '../core/ports.ts';
import type {
  ClassFinetuneView,
  JobView,
  ProgressMessage,
  TrainingLimits,
  TrainingService,
  VersionView,
} from '../core/training.ts';
import type { Database } from '../db/database.ts';
import { DatabaseError } from '../db/errors.ts';
import type { ModelVersionRecord } from '../db/model-version-repository.ts';
import type { JsonObject, RunPhoto, TrainingRunRecord } from '../db/training-run-repository.ts';
import { UserError } from '../errors.ts';
import { readModelMeta } from '../ml/model-meta.ts';
import { isLeNetDigitModel } from '../trainer/class-finetune-job.ts';
import { RECIPES } from '../trainer/recipes.ts';
import { classPhotosToAttach, countClassPhotos } from './class-photos.ts';
import { retrainParamsOf } from './params.ts';
import { pruneVersions } from './version-retention.ts';
import { ensureShippedVersion, materializeVersion, type VersionFolders } from './version-store.ts';

/** Options of {@link createTrainingService}. */
export interface TrainingServiceOptions {
  readonly db: Pick<Database, 'trainingRuns' | 'modelVersions' | 'users'>;
  readonly folders: VersionFolders;
  readonly limits: TrainingLimits;
  /** Called after a job is queued (BullMQ: adds it to the Redis queue). */
  readonly onEnqueued?: (job: TrainingRunRecord) => Promise<void>;
  /** Called after a cancel was asked for a running job (BullMQ: tells its worker). */
  readonly onCancel?: (jobId: number) => Promise<void>;
  /** issue 16: the class's labelled photos, counted before a `with=class` job is queued. */
  readonly classData?: ClassData;
}

/** issue 16: fewest labelled photos of a `with=class` job when the limits do not say. */
export const CLASS_MIN_PHOTOS_DEFAULT = 50;

/** The models `with=class` fine-tunes: those whose recipe is LeNet on digits. */
export const CLASS_MODELS: readonly string[] = Object.values(RECIPES)
  .filter((r) => isLeNetDigitModel(r))
  .map((r) => r.id)
  .sort();

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

/** A stored run as the core shows it. */
export function jobView(run: TrainingRunRecord): JobView {
  const p = retrainParamsOf(run.params);
  const m = run.metrics ?? {};
  const progress = run.progress as JobView['progress'];
  const testAccuracy = num(m.testAccuracy);
  return {
    id: run.id,
    modelId: run.modelId,
    state: run.status,
    params: {
      ...(p.epochs === undefined ? {} : { epochs: p.epochs }),
      ...(p.lr === undefined ? {} : { lr: p.lr }),
      ...(p.batch === undefined ? {} : { batch: p.batch }),
      ...(p.force ? { force: true } : {}),
      ...(p.with ? { with: p.with } : {}),
    },
    requester: p.requester ?? 'cli',
    ...(p.requesterName === undefined ? {} : { requesterName: p.requesterName }),
    progress: progress ?? null,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    attempts: run.attempts,
    version: run.version,
    result:
      run.status === 'succeeded' && testAccuracy !== null
        ? {
            testAccuracy,
            servedVersion: typeof m.servedVersion === 'string' ? m.servedVersion : '0',
            servedAccuracy: num(m.servedAccuracy),
            promoted: m.promoted === true,
            forced: m.forced === true,
            ...(m.classFinetune && typeof m.classFinetune === 'object'
              ? { classFinetune: m.classFinetune as unknown as ClassFinetuneView }
              : {}),
          }
        : null,
    failure:
      run.status === 'failed'
        ? {
            reason: typeof m.reason === 'string' ? m.reason : 'other',
            message: (run.error ?? '').replace(/^[a-z]+: /, ''),
            ...(typeof m.command === 'string' ? { command: m.command } : {}),
            ...(m.params && typeof m.params === 'object' && !Array.isArray(m.params)
              ? { params: m.params as Record<string, number> }
              : {}),
          }
        : null,
    backend: run.backend,
    device: run.device,
  };
}

/** A stored version as the core shows it. */
export function versionView(v: ModelVersionRecord): VersionView {
  return {
    modelId: v.modelId,
    version: v.version,
    testAccuracy: v.testAccuracy,
    createdAt: v.createdAt,
    createdBy: v.createdBy,
    params: v.params,
    jobId: v.jobId,
    parentVersion: v.parentVersion,
    served: v.active,
  };
}

/**
 * Creates the trainer service.
 *
 * @example
 * const training = createTrainingService({ db, folders: { modelsDir, dataDir }, limits });
 * const { job, place } = await training.enqueue({ model: 'lenet-mnist', epochs: 1 }, 'cli');
 */
export function createTrainingService(o: TrainingServiceOptions): TrainingService {
  const { trainingRuns, modelVersions, users } = o.db;
  const trainable = Object.keys(RECIPES).sort();

  async function versions(modelId: string): Promise<ModelVersionRecord[]> {
    await ensureShippedVersion(modelVersions, o.folders, modelId);
    // Number order in both cases: `rollback`'s "the one before" and retention's agree on it.
    const all = (await modelVersions.list(modelId)).sort(
      (a, b) => Number(a.version) - Number(b.version),
    );
    if (!all.some((v) => v.active)) {
      // Nothing promoted yet: the shipped version is the served one.
      return all.map((v) => (v.version === '0' ? { ...v, active: true } : v));
    }
    return all;
  }

  /**
   * issue 16: refuses a `with=class` job at once: not a LeNet digit model, or too few photos.
   * issue 14 follow-up: returns the photos to attach to the job (their bytes from this
   * machine's image store), so that a worker elsewhere needs only the database.
   */
  async function checkClassData(modelId: string): Promise<RunPhoto[]> {
    if (!CLASS_MODELS.includes(modelId)) {
      throw new UserError('retrain.class_model', `${modelId} is not a LeNet digit model`, {
        model: modelId,
        models: CLASS_MODELS.join(', '),
      });
    }
    const needed = o.limits.classMinPhotos ?? CLASS_MIN_PHOTOS_DEFAULT;
    const meta = await readModelMeta(path.join(o.folders.modelsDir, modelId));
    const refuse = (count: number): UserError =>
      new UserError('classdata.not_enough', `${count} labelled photos, ${needed} needed`, {
        count,
        needed,
        missing: needed - count,
      });
    // Counted first (no bytes read) so that a class far short is refused at once.
    const count = o.classData ? await countClassPhotos(o.classData, meta.classNames) : 0;
    if (count < needed || !o.classData) throw refuse(count);
    // A photo whose file is gone (retention) cannot be attached: counted out too.
    const photos = await classPhotosToAttach(o.classData, meta.classNames);
    if (photos.length < needed) throw refuse(photos.length);
    return photos;
  }

  return {
    limits: o.limits,
    trainable: () => Promise.resolve(trainable),

    async enqueue(request, requester) {
      const photos = request.with === 'class' ? await checkClassData(request.model) : undefined;
      let requestedBy: number | undefined;
      if (requester !== 'cli') {
        const user = await users.upsertFromPlatform({
          platform: requester.platform,
          platformId: requester.userId,
        });
        requestedBy = user.id;
        const active = await trainingRuns.countActive(user.id);
        if (active >= o.limits.jobsPerInstructor) {
          throw new UserError('job.limit', `${active} jobs already queued or running`, {
            what: 'jobs',
            value: active + 1,
            limit: o.limits.jobsPerInstructor,
            setting: 'TRAIN_JOBS_PER_INSTRUCTOR',
          });
        }
      }
      const params: JsonObject = {
        ...(request.epochs === undefined ? {} : { epochs: request.epochs }),
        ...(request.lr === undefined ? {} : { lr: request.lr }),
        ...(request.batch === undefined ? {} : { batch: request.batch }),
        ...(request.force ? { force: true } : {}),
        ...(request.with ? { with: request.with } : {}),
        // issue 14 follow-up: the worker reads these from training_run_photos
        ...(photos ? { classPhotos: photos.length } : {}),
        requester: requester === 'cli' ? 'cli' : `${requester.platform}:${requester.userId}`,
        ...(requester !== 'cli' && requester.name ? { requesterName: requester.name } : {}),
      };
      const run = await trainingRuns.create({
        modelId: request.model,
        ...(requestedBy === undefined ? {} : { requestedBy }),
        params,
        ...(photos ? { photos } : {}),
      });
      try {
        await o.onEnqueued?.(run);
      } catch (e) {
        // The row alone would wait forever for a queue that never heard of it: cancel it.
        await trainingRuns.requestCancel(run.id);
        throw new UserError(
          'job.queue_down',
          `queuing job ${run.id} failed: ${(e as Error).message}`,
          { job: run.id },
        );
      }
      return { job: jobView(run), place: await trainingRuns.queuePosition(run.id) };
    },

    async watch(jobId, message: ProgressMessage) {
      await trainingRuns.setNotify(jobId, { ...message });
    },

    async list() {
      return (await trainingRuns.listForDisplay(10)).map(jobView);
    },

    async get(jobId) {
      const run = await trainingRuns.get(jobId);
      return run && jobView(run);
    },

    async cancel(jobId) {
      const run = await trainingRuns.requestCancel(jobId);
      if (run?.status === 'running') await o.onCancel?.(jobId);
      return run && jobView(run);
    },

    async versions(modelId) {
      const views: VersionView[] = [];
      for (const v of await versions(modelId)) {
        const view = versionView(v);
        // The web chat's ids are random: the version's params (copied from its job's) keep the
        // name the operator chatted under; versions made before that have their job's.
        const stored = retrainParamsOf(v.params ?? {}).requesterName;
        const name =
          stored ??
          (v.createdBy?.startsWith('web:') && v.jobId !== null
            ? retrainParamsOf((await trainingRuns.get(v.jobId))?.params ?? {}).requesterName
            : undefined);
        views.push(name === undefined ? view : { ...view, createdByName: name });
      }
      return views;
    },

    async prune(modelId, keep) {
      if ((await modelVersions.list(modelId)).length === 0) {
        throw new UserError('version.unknown', `${modelId} has no versions`, {
          model: modelId,
          version: '?',
        });
      }
      const r = await pruneVersions(o.db, o.folders, { modelId, keep });
      return {
        removed: r.removed.map((v) => v.version),
        kept: r.kept.map(({ version, reason }) => ({ version, reason })),
        dbBytes: r.dbBytes,
        diskBytes: r.diskBytes,
      };
    },

    async rollback(modelId, version) {
      // A promotion landing while the target's folder is written (seconds for 22 MB): decided
      // again against the version served now, never moving the alias back over it blindly.
      for (let attempt = 1; ; attempt++) {
        try {
          return await rollbackOnce(modelId, version);
        } catch (e) {
          const moved = e instanceof DatabaseError && e.code === 'conflict';
          if (!moved || attempt >= 3) throw e;
        }
      }
    },
  };

  async function rollbackOnce(
    modelId: string,
    version: string | undefined,
  ): Promise<{ from: string; to: string }> {
    const all = await versions(modelId);
    const served = all.find((v) => v.active);
    if (!served) {
      throw new UserError('version.unknown', `${modelId} has no versions`, {
        model: modelId,
        version: version ?? '?',
      });
    }
    let target: ModelVersionRecord | undefined;
    if (version === undefined) {
      const i = all.indexOf(served);
      target = i > 0 ? all[i - 1] : served;
    } else {
      target = all.find((v) => v.version === version);
      if (!target) {
        throw new UserError('version.unknown', `${modelId} has no version ${version}`, {
          model: modelId,
          version,
        });
      }
    }
    if (!target || target.version === served.version) {
      return { from: served.version, to: served.version };
    }
    // issue 14 follow-up: refuse a version no machine could load (its folder gone, no files
    // stored); the one asking gets the folder written here, checked, as the bots will.
    try {
      await materializeVersion(modelVersions, o.folders, modelId, target.version);
    } catch (e) {
      throw new UserError(
        'version.unavailable',
        `${modelId}@${target.version}: ${(e as Error).message}`,
        { model: modelId, version: target.version },
      );
    }
    const to = target.version;
    await modelVersions.activate(modelId, to, { ifServed: served.version }).catch((e: unknown) => {
      // Pruned since it was found: the same reply as a version that never was.
      if (e instanceof DatabaseError && e.code === 'not_found') {
        throw new UserError('version.unknown', `${modelId}@${to} was removed`, {
          model: modelId,
          version: to,
        });
      }
      throw e;
    });
    return { from: served.version, to };
  }
}
