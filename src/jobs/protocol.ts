/**
 * Messages between a trainer worker and the child process it forks for one job (Node IPC,
 * structured clone). The child runs `runTrainingJob` and nothing else; the parent owns the
 * database, the lease and the decision to promote.
 */
import type { TrainingJobSpecInput } from '../trainer/job-spec.ts';

/** Why a job failed, as the chat explains it (`job.reason.*`). */
export const FAILURE_REASONS = ['nan', 'disk', 'dataset', 'worker', 'parameter', 'other'] as const;
/** One of {@link FAILURE_REASONS}. */
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Progress of a running job, as stored in `training_runs.progress_json` and shown in chats. */
export interface JobProgress {
  /** 1-based, of `epochs`. */
  readonly epoch: number;
  readonly epochs: number;
  readonly batch: number;
  readonly batches: number;
  readonly loss: number;
  readonly acc: number;
  /** Estimated seconds left, from the pace so far. */
  readonly etaSeconds: number;
}

/**
 * Seconds a job has left, from the pace of the batches timed so far.
 * @param done batches done of all epochs; `total`: of all epochs.
 * @param timedBatches batches run since the clock started, in `timedMs` ms. The clock starts when
 *   the first epoch begins, not with the process: loading the data set before it (minutes on full
 *   MNIST) is no part of the pace, and counting it made the first estimates hours long.
 */
export function etaSeconds(
  done: number,
  total: number,
  timedBatches: number,
  timedMs: number,
): number {
  const perBatchMs = timedMs / Math.max(1, timedBatches);
  return Math.round((perBatchMs * Math.max(0, total - done)) / 1000);
}

/** Parent -> child. */
export type ToChild = { readonly type: 'start'; readonly spec: TrainingJobSpecInput };

/** Child -> parent. */
export type FromChild =
  | { readonly type: 'backend'; readonly backend: string; readonly device: string }
  | { readonly type: 'progress'; readonly progress: JobProgress }
  | {
      readonly type: 'done';
      readonly testAccuracy: number;
      readonly modelDir: string;
      readonly history: readonly Record<string, number>[];
      readonly datasetFingerprint: string;
      readonly seconds: number;
    }
  | {
      readonly type: 'failed';
      readonly reason: FailureReason;
      readonly message: string;
      /** For `dataset`: the command that downloads it. */
      readonly command?: string;
    };

/** A job's failure with its reason, as the parent rejects with it. */
export class JobFailure extends Error {
  override readonly name = 'JobFailure';
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}
