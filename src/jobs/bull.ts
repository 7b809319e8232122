/**
 * The scaled-out queue: the same training jobs through BullMQ on Redis (`REDIS_URL`), to trainer
 * workers on other machines (`npm run worker`). `training_runs` stays the record of truth: a
 * BullMQ job carries only the run's id, the worker leases the row as the embedded worker does,
 * and the bot hears progress through BullMQ's `QueueEvents` (also stored in the row).
 *
 * BullMQ's pitfalls, handled: its sandboxed processors reuse child processes between jobs, so
 * the processor here runs in the worker and forks a fresh child per job itself
 * (`run-in-child.ts`); no TypeScript processor file is handed to BullMQ; `worker.close()` waits
 * for the active job, so shutdown first aborts it (given back to the queue, resumed later).
 */
import { DelayedError, Queue, QueueEvents, WaitingError, Worker } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { TrainingRunRecord } from '../db/training-run-repository.ts';
import { executeJob, type TrainerWorkerOptions } from './db-worker.ts';
import type { JobProgress } from './protocol.ts';
import { connectRedis } from './redis.ts';
import { sweepAbandonedVersions } from './version-retention.ts';

/** The queue's name in Redis. */
export const TRAINING_QUEUE = 'cnn-classroom-training';

/** A BullMQ job's payload: the run to lease (its BullMQ id is `run-<id>`: ids must not be integers). */
export interface TrainingJobData {
  readonly runId: number;
}

/** Default of `REDIS_CONNECT_TIMEOUT_SECONDS`, ms. */
const CONNECT_TIMEOUT_MS = 5000;

/** How the producer connects. */
export interface BullProducerOptions {
  readonly logger: Logger;
  /** Most ms to wait for Redis at start (default 5000). */
  readonly connectTimeoutMs?: number;
  /** BullMQ's key prefix (default `bull`; tests: one per run). */
  readonly prefix?: string;
}

/** The bot's side: adds jobs and listens to their progress. */
export interface BullProducer {
  add(run: TrainingRunRecord): Promise<void>;
  /**
   * Adds each run BullMQ does not hold (no job `run-<id>` in any state), e.g. rows queued
   * through the database queue before `REDIS_URL` was set. Idempotent: adding an id BullMQ holds
   * is a no-op there anyway.
   * @returns the ids of the runs added.
   */
  addMissing(runs: readonly TrainingRunRecord[]): Promise<number[]>;
  close(): Promise<void>;
}

/**
 * Connects the producer and the event listener.
 * @param onProgress called for each progress event (run id, progress).
 * @throws {Error} within the connect timeout when Redis is unreachable or refuses the password.
 */
export async function startBullProducer(
  redisUrl: string,
  onProgress: (runId: number, progress: JobProgress) => void,
  o: BullProducerOptions,
): Promise<BullProducer> {
  const prefix = o.prefix ?? 'bull';
  const log = o.logger.child({ queue: 'bullmq' });
  const connectTimeoutMs = o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  // BullMQ does not close connections it was handed: they are closed here on shutdown. The
  // queue's fails commands at once while Redis is down (BullMQ's advice for adding jobs), so a
  // /retrain then says so instead of waiting without end.
  const queueRedis = await connectRedis(redisUrl, {
    logger: log,
    connectTimeoutMs,
    role: 'queue',
    offlineQueue: false,
  });
  const eventsRedis = await connectRedis(redisUrl, {
    logger: log,
    connectTimeoutMs,
    role: 'events',
  }).catch((e: unknown) => {
    queueRedis.disconnect();
    throw e;
  });
  const redis = [queueRedis, eventsRedis] as const;
  const queue = new Queue<TrainingJobData>(TRAINING_QUEUE, {
    connection: redis[0],
    prefix,
  });
  const events = new QueueEvents(TRAINING_QUEUE, {
    connection: redis[1],
    prefix,
  });
  // Connection errors are logged by connectRedis; without listeners they would throw.
  queue.on('error', (e) => log.debug({ err: e }, 'bullmq queue error'));
  events.on('error', (e) => log.debug({ err: e }, 'bullmq queue events error'));
  events.on('progress', ({ jobId, data }) => {
    if (typeof data === 'object' && data !== null && 'epoch' in data) {
      onProgress(Number(jobId.replace(/^run-/, '')), data as unknown as JobProgress);
    }
  });
  await events.waitUntilReady();
  const add = async (run: TrainingRunRecord): Promise<void> => {
    await queue.add(
      'train',
      { runId: run.id },
      { jobId: `run-${run.id}`, removeOnComplete: true, removeOnFail: true, attempts: 1 },
    );
  };
  return {
    add,
    async addMissing(runs) {
      const added: number[] = [];
      for (const run of runs) {
        if (await queue.getJob(`run-${run.id}`)) continue;
        await add(run);
        added.push(run.id);
      }
      return added;
    },
    async close() {
      await events.close();
      await queue.close();
      for (const r of redis) r.disconnect();
    },
  };
}

/** A started BullMQ trainer worker. */
export interface BullTrainerWorker {
  readonly owner: string;
  close(): Promise<void>;
}

/**
 * Starts a BullMQ worker taking one training job at a time; each runs in a fresh child process.
 * Progress goes to BullMQ (`job.updateProgress`, heard by `QueueEvents`) and to the row.
 */
export async function startBullWorker(
  o: TrainerWorkerOptions & {
    readonly redisUrl: string;
    readonly prefix?: string;
    /** Most ms to wait for Redis at start (default 5000). */
    readonly connectTimeoutMs?: number;
  },
): Promise<BullTrainerWorker> {
  const owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const stop = new AbortController();
  const log = o.logger.child({ worker: owner, queue: 'bullmq' });
  const redis = await connectRedis(o.redisUrl, {
    logger: log,
    connectTimeoutMs: o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    role: 'worker',
  });
  const worker = new Worker<TrainingJobData>(
    TRAINING_QUEUE,
    async (job, token) => {
      // A job whose worker died after its last try fails, as the embedded worker's claim does.
      const spent = await o.trainingRuns.failSpent(job.data.runId, o.maxAttempts);
      if (spent) {
        log.warn({ job: spent.id, error: spent.error }, 'job failed: worker died');
        await sweepAbandonedVersions(o, o.folders, log);
        return;
      }
      const run = await o.trainingRuns.claimById(job.data.runId, owner, o.leaseMs);
      if (!run) {
        const held = await o.trainingRuns.get(job.data.runId);
        if (held?.status === 'running' && held.leaseExpiresAt !== null) {
          // Still leased: BullMQ handed the job out again while its worker's lease runs (a
          // killed worker's lock can lapse first: the stalled-job check). Completing it here
          // would leave the row `running` for good (nothing else claims it in this mode), its
          // pending version never cleaned up: try again once the lease has ended (a live
          // worker keeps renewing it, and its job then ends with the row).
          const at = Math.max(Date.now(), held.leaseExpiresAt.getTime()) + 1000;
          log.info(
            { job: held.id, leaseOwner: held.leaseOwner, retryAt: new Date(at).toISOString() },
            'job still leased by another worker: tried again when its lease ends',
          );
          await job.moveToDelayed(at, token);
          throw new DelayedError();
        }
        log.info({ job: job.data.runId }, 'job no longer queued (cancelled or taken)');
        return;
      }
      const end = await executeJob(
        run,
        owner,
        {
          ...o,
          logger: log,
          onProgress: (p) => void job.updateProgress({ ...p }).catch(() => undefined),
        },
        stop.signal,
      );
      if (end === 'given back') {
        // The row is queued again: so is the BullMQ job (without using up a BullMQ attempt),
        // else BullMQ would count it completed and no worker would see the row again.
        await job.moveToWait(token);
        throw new WaitingError();
      }
    },
    {
      connection: redis,
      prefix: o.prefix ?? 'bull',
      concurrency: 1,
      // The row's lease, not BullMQ's lock, guards the job; keep the lock longer than a stall.
      lockDuration: Math.max(30_000, o.leaseMs),
      // Each killed worker is one stall, and BullMQ must hand the job out again every time:
      // the row decides (its tries, TRAIN_MAX_ATTEMPTS, end a job that kills its workers:
      // `failSpent` above; its lease keeps a live worker's). BullMQ's default (1) dropped a job
      // killed twice, and its row stayed `running` for good. Effectively unlimited.
      maxStalledCount: 1000,
    },
  );
  worker.on('error', (e) => log.error({ err: e }, 'bullmq worker error'));
  try {
    await worker.waitUntilReady();
  } catch (e) {
    await worker.close(true).catch(() => undefined);
    redis.disconnect();
    throw e;
  }
  log.info('trainer worker started (BullMQ)');
  // What a worker that crashed before this one started left pending.
  await sweepAbandonedVersions(o, o.folders, log);
  return {
    owner,
    async close() {
      stop.abort();
      await worker.close();
      redis.disconnect();
      log.info('trainer worker stopped');
    },
  };
}
