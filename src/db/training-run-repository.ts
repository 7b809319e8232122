import type { AppPrismaClient } from './client.ts';
import { DatabaseError } from './errors.ts';

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
}

/** What {@link TrainingRunRepository.create} needs. */
export interface NewTrainingRun {
  readonly modelId: string;
  readonly requestedBy?: number | undefined;
  readonly params: JsonObject;
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
  get(id: number): Promise<TrainingRunRecord | undefined>;
  /** The last `limit` runs, of one model or of all, newest first. */
  listRecent(limit: number, modelId?: string): Promise<TrainingRunRecord[]>;
}

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
}

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
  };
}

/**
 * Creates the training run repository over a Prisma client.
 *
 * @example
 * const run = await trainingRuns.create({ modelId: 'lenet-mnist', requestedBy: user.id, params: { epochs: 3 } });
 * await trainingRuns.markRunning(run.id);
 * await trainingRuns.markSucceeded(run.id, { testAccuracy: 0.991 });
 */
export function createTrainingRunRepository(prisma: AppPrismaClient): TrainingRunRepository {
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
    },
  ): Promise<TrainingRunRecord> {
    const { count } = await prisma.trainingRun.updateMany({
      where: { id, status: { in: [...from] } },
      data,
    });
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
      const row = await prisma.trainingRun.create({
        data: {
          modelId: run.modelId,
          requestedBy: run.requestedBy ?? null,
          paramsJson: JSON.stringify(run.params),
        },
      });
      return toTrainingRun(row);
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
        ...(metrics !== undefined && { metricsJson: JSON.stringify(metrics) }),
      }),

    markCancelled: (id) =>
      transition(id, ['queued', 'running'], { status: 'cancelled', finishedAt: new Date() }),

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
  };
}
