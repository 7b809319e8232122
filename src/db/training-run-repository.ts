import { createHash } from 'node:crypto';
import type { AppPrismaClient, DatabaseProvider } from './client.ts';
import { DatabaseError } from './errors.ts';
import { BULK_TRANSACTION } from './model-version-repository.ts';

/**
 * How long after its end a job is still reported to its chat (its final text and curves): the
 * reporter reads jobs finished within this window, and retention keeps their versions meanwhile.
 */
export const REPORT_WINDOW_MS = 10 * 60_000;

/** The states a run never leaves. */
const ENDED: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

/** Life cycle of a training run: queued -> running -> succeeded | failed; queued/running -> cancelled. */
export const TRAINING_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
/** One of {@link TRAINING_STATUSES}. */
export type TrainingStatus = (typeof TRAINING_STATUSES)[number];

/** JSON-serialisable values stored as params and metrics. */
export type JsonValue =
  string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** A training run, as stored. */
export interface TrainingRunRecord {
  readonly id: number;
  readonly modelId: string;
  readonly status: TrainingStatus;
  /** User id of the instructor who asked for it; null for runs started from the command line. */
  readonly requestedBy: number | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly params: JsonObject;
  readonly metrics: JsonObject | null;
  readonly error: string | null;
  readonly createdAt: Date;
  /** Worker holding the job while it runs, and until when its lease lasts. */
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly heartbeatAt: Date | null;
  /** Runs started: 1 on the first, more after a dead worker's job was taken over. */
  readonly attempts: number;
  readonly cancelRequested: boolean;
  /** The last progress a worker reported (epoch, batch, loss...). */
  readonly progress: JsonObject | null;
  /** Where to report: the chat message to edit. */
  readonly notify: JsonObject | null;
  /** The model version the run produced. */
  readonly version: string | null;
  /** The TF.js backend and device the worker trained on (`tensorflow`, `GPU:0 ...`). */
  readonly backend: string | null;
  readonly device: string | null;
}

/** What {@link TrainingRunRepository.create} needs. */
export interface NewTrainingRun {
  readonly modelId: string;
  readonly requestedBy?: number | undefined;
  readonly params: JsonObject;
  readonly notify?: JsonObject | undefined;
  /**
   * issue 14 follow-up: a `with=class` job's photos, stored with the row in one transaction (a
   * worker on another machine reads them from here, not from the bot's image store); deleted
   * when the run ends, whichever way.
   */
  readonly photos?: readonly RunPhoto[] | undefined;
}

/** One photo a `with=class` job trains on, as attached to it when it was queued. */
export interface RunPhoto {
  readonly submissionId: number;
  /** Its training label (a class name). */
  readonly label: string;
  /** `platform:userId`: the unit of the held-out split. */
  readonly student: string;
  /** The image's bytes as stored (decoded and preprocessed by the job). */
  readonly bytes: Uint8Array;
}

/** What {@link TrainingRunRepository.claim} did. */
export interface ClaimResult {
  /** The job now leased to the caller, if any was ready. */
  readonly run?: TrainingRunRecord;
  /** Jobs whose worker died once too often: now failed (their reporters tell the chat). */
  readonly failed: readonly TrainingRunRecord[];
}

/** The database as a job queue: leases renewed by heartbeats, claimed atomically. */
export interface TrainingJobQueue {
  /**
   * Leases the oldest runnable job to `owner` for `leaseMs`: a queued one whose model is not
   * being trained by a live job (a second job of a model waits behind the first), or a running
   * one whose lease expired (its worker died: resumed, attempts + 1). A job whose lease expired
   * after `maxAttempts` runs fails instead, with the reason. One transaction: `BEGIN IMMEDIATE`
   * on SQLite, `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never get the
   * same job.
   */
  claim(owner: string, leaseMs: number, maxAttempts: number): Promise<ClaimResult>;
  /**
   * Leases one given job to `owner` (BullMQ hands a worker a job id): a queued job, or a running
   * one whose lease expired; attempts + 1. Undefined when it is cancelled, finished, or leased.
   */
  claimById(id: number, owner: string, leaseMs: number): Promise<TrainingRunRecord | undefined>;
  /**
   * Fails one given job if its lease expired after `maxAttempts` runs (its worker died once too
   * often), with the reason {@link claim} gives: BullMQ hands a worker a job id, and without this
   * `claimById` would run such a job again and again. Conditional, so of two callers one fails it.
   * @returns the failed job; undefined when it is not running under a spent lease.
   */
  failSpent(id: number, maxAttempts: number): Promise<TrainingRunRecord | undefined>;
  /**
   * Renews the lease of a running job and stores its progress.
   * @returns `lost` when the job is no longer this owner's (taken over or finished);
   *   `cancel` when someone asked to cancel it.
   */
  heartbeat(
    id: number,
    owner: string,
    leaseMs: number,
    progress?: JsonObject,
  ): Promise<{ readonly lost: boolean; readonly cancel: boolean }>;
  /**
   * Gives a running job back to the queue (a worker shutting down): queued again, to resume from
   * its checkpoint; the run does not count as a try.
   */
  release(id: number, owner: string, options?: { readonly countsAsTry?: boolean }): Promise<void>;
  /** Records the worker's backend and device. */
  setBackend(id: number, backend: string, device: string): Promise<void>;
  /**
   * Cancels a queued job at once; asks the worker of a running one to stop (it kills the job's
   * process within a heartbeat). A running job whose lease expired has no worker to ask (it was
   * killed; with BullMQ its job may be gone): it is cancelled at once too. Returns the job as it
   * is now; undefined if there is none.
   */
  requestCancel(id: number): Promise<TrainingRunRecord | undefined>;
  /** running -> succeeded with the produced version (only by the lease owner). */
  finishSucceeded(
    id: number,
    owner: string,
    metrics: JsonObject,
    version: string,
  ): Promise<TrainingRunRecord>;
  /** 1 for the next job to run; counts the queued and running jobs before it. */
  queuePosition(id: number): Promise<number>;
  /** Queued and running jobs of one requester. */
  countActive(requestedBy: number): Promise<number>;
  /** Queued and running jobs, oldest first, then the `recent` latest finished ones. */
  listForDisplay(recent: number): Promise<TrainingRunRecord[]>;
  /** Jobs with a chat to report to that are not finished, or finished within `sinceMs`. */
  listToReport(sinceMs: number): Promise<TrainingRunRecord[]>;
  /** Sets where to report: the chat message to edit with progress. */
  setNotify(id: number, notify: JsonObject): Promise<void>;
  /** Clears where to report (after the final message was sent). */
  clearNotify(id: number): Promise<void>;
}

/** Training runs and their state changes (each checked, so a finished run stays finished). */
export interface TrainingRunRepository {
  /** Queues a run. */
  create(run: NewTrainingRun): Promise<TrainingRunRecord>;
  /** queued -> running, stamping the start. */
  markRunning(id: number): Promise<TrainingRunRecord>;
  /** running -> succeeded, with the final metrics. */
  markSucceeded(id: number, metrics: JsonObject): Promise<TrainingRunRecord>;
  /** queued/running -> failed, with the error and any metrics so far. */
  markFailed(id: number, error: string, metrics?: JsonObject): Promise<TrainingRunRecord>;
  /** queued/running -> cancelled. */
  markCancelled(id: number): Promise<TrainingRunRecord>;
  /** issue 14 follow-up: the photos attached to a run (none once it ended), in attach order. */
  photos(id: number): Promise<RunPhoto[]>;
  get(id: number): Promise<TrainingRunRecord | undefined>;
  /** The last `limit` runs, of one model or of all, newest first. */
  listRecent(limit: number, modelId?: string): Promise<TrainingRunRecord[]>;
}

/** Both: what the bot, the workers and the CLI use. */
export type TrainingRuns = TrainingRunRepository & TrainingJobQueue;

interface TrainingRunRow {
  id: number;
  modelId: string;
  status: string;
  requestedBy: number | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  paramsJson: string;
  metricsJson: string | null;
  error: string | null;
  createdAt: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  heartbeatAt: Date | null;
  attempts: number;
  cancelRequested: boolean;
  progressJson: string | null;
  notifyJson: string | null;
  version: string | null;
  backend: string | null;
  device: string | null;
}

const parse = (json: string | null): JsonObject | null =>
  json === null ? null : (JSON.parse(json) as JsonObject);

function isStatus(value: string): value is TrainingStatus {
  return (TRAINING_STATUSES as readonly string[]).includes(value);
}

function toTrainingRun(row: TrainingRunRow): TrainingRunRecord {
  if (!isStatus(row.status)) {
    throw new Error(`training run ${row.id} has unknown status "${row.status}"`);
  }
  return {
    id: row.id,
    modelId: row.modelId,
    status: row.status,
    requestedBy: row.requestedBy,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    params: JSON.parse(row.paramsJson) as JsonObject,
    metrics: row.metricsJson === null ? null : (JSON.parse(row.metricsJson) as JsonObject),
    error: row.error,
    createdAt: row.createdAt,
    leaseOwner: row.leaseOwner,
    leaseExpiresAt: row.leaseExpiresAt,
    heartbeatAt: row.heartbeatAt,
    attempts: row.attempts,
    cancelRequested: row.cancelRequested,
    progress: parse(row.progressJson),
    notify: parse(row.notifyJson),
    version: row.version,
    backend: row.backend,
    device: row.device,
  };
}

/**
 * Leases run `id` to `owner` for `leaseMs` if it is queued or its lease has expired (one
 * conditional update, so two workers cannot both win), counting the attempt and stamping the
 * first start. Shared by the queue's claim (inside its transaction) and BullMQ's claim by id.
 * @returns the leased run, or undefined when another worker holds it or it has ended.
 */
async function leaseRun(
  db: Pick<AppPrismaClient, 'trainingRun'>,
  id: number,
  owner: string,
  leaseMs: number,
  now: Date,
): Promise<TrainingRunRecord | undefined> {
  const { count } = await db.trainingRun.updateMany({
    where: {
      id,
      OR: [{ status: 'queued' }, { status: 'running', leaseExpiresAt: { lt: now } }],
    },
    data: {
      status: 'running',
      leaseOwner: owner,
      leaseExpiresAt: new Date(now.getTime() + leaseMs),
      heartbeatAt: now,
      attempts: { increment: 1 },
    },
  });
  if (count === 0) return undefined;
  const row = await db.trainingRun.findUniqueOrThrow({ where: { id } });
  const started =
    row.startedAt === null
      ? await db.trainingRun.update({ where: { id }, data: { startedAt: now } })
      : row;
  return toTrainingRun(started);
}

/**
 * PostgreSQL, under READ COMMITTED: locks a candidate job for this claim, or says to skip it.
 * The row is taken with `FOR UPDATE SKIP LOCKED` (a row another worker is claiming is skipped
 * instead of waited for). The claim also takes a transaction-level advisory lock on the job's
 * model and re-reads, with it held, whether a job of that model is running (with a live lease, so
 * an expired job being re-claimed does not count itself): two workers that both read the model as
 * idle before either committed would otherwise start two of its jobs at once.
 */
async function lockForClaim(
  tx: Pick<AppPrismaClient, 'trainingRun' | '$queryRaw'>,
  c: { readonly id: number; readonly modelId: string; readonly status: string },
  now: Date,
): Promise<boolean> {
  const row = await tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM training_runs WHERE id = ${c.id} FOR UPDATE SKIP LOCKED`;
  if (row.length === 0) return false;
  // A queued job and an expired running one alike: the re-claim of an expired job must not race
  // another worker starting a queued job of the same model.
  const key = `cnn-classroom:training:${c.modelId}`;
  const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`
    SELECT pg_try_advisory_xact_lock(hashtext(${key})) AS locked`;
  if (lock?.locked !== true) return false;
  const running = await tx.trainingRun.count({
    where: { modelId: c.modelId, status: 'running', leaseExpiresAt: { gte: now } },
  });
  return running === 0;
}

/**
 * Creates the training run repository over a Prisma client.
 *
 * @example
 * const run = await trainingRuns.create({ modelId: 'lenet-mnist', requestedBy: user.id, params: { epochs: 3 } });
 * await trainingRuns.markRunning(run.id);
 * await trainingRuns.markSucceeded(run.id, { testAccuracy: 0.991 });
 */
export function createTrainingRunRepository(
  prisma: AppPrismaClient,
  provider: DatabaseProvider = 'sqlite',
): TrainingRuns {
  /** A run that ended keeps no photos (they are students' personal data: issue 19). */
  async function dropPhotos(id: number, tx: Pick<AppPrismaClient, 'trainingRunPhoto'> = prisma) {
    await tx.trainingRunPhoto.deleteMany({ where: { runId: id } });
  }

  /**
   * Fails a run found running under a lease expired before `now` after its last try, with the
   * reason; drops its photos. Conditional, so of two workers finding it at once one fails it.
   * @returns the failed run; undefined when another worker failed or re-leased it first.
   */
  async function failSpentRun(
    tx: Pick<AppPrismaClient, 'trainingRun' | 'trainingRunPhoto'>,
    run: { readonly id: number; readonly attempts: number; readonly leaseOwner: string | null },
    now: Date,
  ): Promise<TrainingRunRecord | undefined> {
    const error = `worker stopped ${run.attempts} times (last lease by ${run.leaseOwner ?? '?'})`;
    const { count } = await tx.trainingRun.updateMany({
      where: { id: run.id, status: 'running', leaseExpiresAt: { lt: now } },
      data: { status: 'failed', finishedAt: now, error, leaseOwner: null, leaseExpiresAt: null },
    });
    if (count === 0) return undefined;
    await dropPhotos(run.id, tx);
    return toTrainingRun(await tx.trainingRun.findUniqueOrThrow({ where: { id: run.id } }));
  }

  /** Moves a run from one of `from` to a new state in one statement, so racing updates cannot both win. */
  async function transition(
    id: number,
    from: readonly TrainingStatus[],
    data: {
      status: TrainingStatus;
      startedAt?: Date;
      finishedAt?: Date;
      metricsJson?: string;
      error?: string;
      leaseOwner?: null;
      leaseExpiresAt?: null;
    },
  ): Promise<TrainingRunRecord> {
    const { count } = await prisma.trainingRun.updateMany({
      where: { id, status: { in: [...from] } },
      data,
    });
    if (count === 1 && ENDED.has(data.status)) await dropPhotos(id);
    const row = await prisma.trainingRun.findUnique({ where: { id } });
    if (row === null) throw new DatabaseError('not_found', `no training run ${id}`);
    if (count === 0) {
      throw new DatabaseError(
        'invalid_transition',
        `training run ${id} is ${row.status}, cannot become ${data.status}`,
      );
    }
    return toTrainingRun(row);
  }

  return {
    async create(run) {
      const data = {
        modelId: run.modelId,
        requestedBy: run.requestedBy ?? null,
        paramsJson: JSON.stringify(run.params),
        notifyJson: run.notify === undefined ? null : JSON.stringify(run.notify),
      };
      const photos = run.photos;
      if (photos === undefined) return toTrainingRun(await prisma.trainingRun.create({ data }));
      // One transaction: no worker can claim the run before its photos are there.
      const row = await prisma.$transaction(async (tx) => {
        const r = await tx.trainingRun.create({ data });
        for (const p of photos) {
          await tx.trainingRunPhoto.create({
            data: {
              runId: r.id,
              submissionId: p.submissionId,
              label: p.label,
              student: p.student,
              sha256: createHash('sha256').update(p.bytes).digest('hex'),
              bytes: new Uint8Array(p.bytes),
            },
          });
        }
        return r;
      }, BULK_TRANSACTION);
      return toTrainingRun(row);
    },

    async photos(id) {
      const rows = await prisma.trainingRunPhoto.findMany({
        where: { runId: id },
        orderBy: { id: 'asc' },
        select: { submissionId: true, label: true, student: true, bytes: true },
      });
      return rows.map((r) => ({ ...r, bytes: new Uint8Array(r.bytes) }));
    },

    markRunning: (id) => transition(id, ['queued'], { status: 'running', startedAt: new Date() }),

    markSucceeded: (id, metrics) =>
      transition(id, ['running'], {
        status: 'succeeded',
        finishedAt: new Date(),
        metricsJson: JSON.stringify(metrics),
      }),

    markFailed: (id, error, metrics) =>
      transition(id, ['queued', 'running'], {
        status: 'failed',
        finishedAt: new Date(),
        error,
        leaseOwner: null,
        leaseExpiresAt: null,
        ...(metrics !== undefined && { metricsJson: JSON.stringify(metrics) }),
      }),

    markCancelled: (id) =>
      transition(id, ['queued', 'running'], {
        status: 'cancelled',
        finishedAt: new Date(),
        leaseOwner: null,
        leaseExpiresAt: null,
      }),

    async get(id) {
      const row = await prisma.trainingRun.findUnique({ where: { id } });
      return row === null ? undefined : toTrainingRun(row);
    },

    async listRecent(limit, modelId) {
      const rows = await prisma.trainingRun.findMany({
        where: modelId === undefined ? {} : { modelId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: Math.max(0, Math.floor(limit)),
      });
      return rows.map(toTrainingRun);
    },

    async claim(owner, leaseMs, maxAttempts) {
      return prisma.$transaction(async (tx) => {
        const now = new Date();
        const failed: TrainingRunRecord[] = [];
        const spent = await tx.trainingRun.findMany({
          where: {
            status: 'running',
            leaseExpiresAt: { lt: now },
            attempts: { gte: maxAttempts },
          },
        });
        for (const run of spent) {
          const f = await failSpentRun(tx, run, now);
          if (f) failed.push(f);
        }
        const busy = await tx.trainingRun.findMany({
          where: { status: 'running', leaseExpiresAt: { gte: now } },
          select: { modelId: true },
        });
        const candidates = await tx.trainingRun.findMany({
          where: {
            OR: [
              { status: 'queued', modelId: { notIn: busy.map((b) => b.modelId) } },
              { status: 'running', leaseExpiresAt: { lt: now }, attempts: { lt: maxAttempts } },
            ],
          },
          orderBy: { id: 'asc' },
          select: { id: true, modelId: true, status: true },
          take: 16,
        });
        for (const c of candidates) {
          if (provider === 'postgresql' && !(await lockForClaim(tx, c, now))) continue;
          // The conditional update reads the row as last committed: a job another worker
          // claimed since the candidates were read is not leased twice; try the next one.
          const run = await leaseRun(tx, c.id, owner, leaseMs, now);
          if (run) return { run, failed };
        }
        return { failed };
      });
    },

    async claimById(id, owner, leaseMs) {
      return leaseRun(prisma, id, owner, leaseMs, new Date());
    },

    async failSpent(id, maxAttempts) {
      const now = new Date();
      const run = await prisma.trainingRun.findFirst({
        where: {
          id,
          status: 'running',
          leaseExpiresAt: { lt: now },
          attempts: { gte: maxAttempts },
        },
      });
      return run ? prisma.$transaction((tx) => failSpentRun(tx, run, now)) : undefined;
    },

    async heartbeat(id, owner, leaseMs, progress) {
      const now = new Date();
      const { count } = await prisma.trainingRun.updateMany({
        where: { id, status: 'running', leaseOwner: owner },
        data: {
          heartbeatAt: now,
          leaseExpiresAt: new Date(now.getTime() + leaseMs),
          ...(progress === undefined ? {} : { progressJson: JSON.stringify(progress) }),
        },
      });
      if (count === 0) return { lost: true, cancel: false };
      const row = await prisma.trainingRun.findUnique({
        where: { id },
        select: { cancelRequested: true },
      });
      return { lost: false, cancel: row?.cancelRequested === true };
    },

    async release(id, owner, options = {}) {
      await prisma.trainingRun.updateMany({
        where: { id, status: 'running', leaseOwner: owner },
        data: {
          status: 'queued',
          leaseOwner: null,
          leaseExpiresAt: null,
          ...(options.countsAsTry ? {} : { attempts: { decrement: 1 } }),
        },
      });
    },

    async setBackend(id, backend, device) {
      await prisma.trainingRun.updateMany({ where: { id }, data: { backend, device } });
    },

    async requestCancel(id) {
      const now = new Date();
      const { count } = await prisma.trainingRun.updateMany({
        where: {
          id,
          OR: [{ status: 'queued' }, { status: 'running', leaseExpiresAt: { lt: now } }],
        },
        data: {
          status: 'cancelled',
          finishedAt: now,
          cancelRequested: true,
          leaseOwner: null,
          leaseExpiresAt: null,
        },
      });
      if (count === 1) await dropPhotos(id);
      await prisma.trainingRun.updateMany({
        where: { id, status: 'running' },
        data: { cancelRequested: true },
      });
      const row = await prisma.trainingRun.findUnique({ where: { id } });
      return row === null ? undefined : toTrainingRun(row);
    },

    async finishSucceeded(id, owner, metrics, version) {
      const { count } = await prisma.trainingRun.updateMany({
        where: { id, status: 'running', leaseOwner: owner },
        data: {
          status: 'succeeded',
          finishedAt: new Date(),
          metricsJson: JSON.stringify(metrics),
          version,
          leaseOwner: null,
          leaseExpiresAt: null,
        },
      });
      if (count === 1) await dropPhotos(id);
      const row = await prisma.trainingRun.findUnique({ where: { id } });
      if (row === null) throw new DatabaseError('not_found', `no training run ${id}`);
      if (count === 0) {
        throw new DatabaseError(
          'invalid_transition',
          `training run ${id} is ${row.status} (lease ${row.leaseOwner ?? 'none'}), not running for ${owner}`,
        );
      }
      return toTrainingRun(row);
    },

    async queuePosition(id) {
      const before = await prisma.trainingRun.count({
        where: { id: { lt: id }, status: { in: ['queued', 'running'] } },
      });
      return before + 1;
    },

    countActive: (requestedBy) =>
      prisma.trainingRun.count({ where: { requestedBy, status: { in: ['queued', 'running'] } } }),

    async listForDisplay(recent) {
      const active = await prisma.trainingRun.findMany({
        where: { status: { in: ['queued', 'running'] } },
        orderBy: { id: 'asc' },
      });
      const done = await prisma.trainingRun.findMany({
        where: { status: { in: ['succeeded', 'failed', 'cancelled'] } },
        orderBy: { id: 'desc' },
        take: Math.max(0, Math.floor(recent)),
      });
      return [...active, ...done].map(toTrainingRun);
    },

    async listToReport(sinceMs) {
      const rows = await prisma.trainingRun.findMany({
        where: {
          notifyJson: { not: null },
          OR: [
            { status: { in: ['queued', 'running'] } },
            { finishedAt: { gte: new Date(Date.now() - sinceMs) } },
          ],
        },
        orderBy: { id: 'asc' },
      });
      return rows.map(toTrainingRun);
    },

    async setNotify(id, notify) {
      await prisma.trainingRun.updateMany({
        where: { id },
        data: { notifyJson: JSON.stringify(notify) },
      });
    },

    async clearNotify(id) {
      await prisma.trainingRun.updateMany({ where: { id }, data: { notifyJson: null } });
    },
  };
}
