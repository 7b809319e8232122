/**
 * Messages between a trainer worker and the child process it forks for one job (Node IPC,
 * structured clone). The child runs `runTrainingJob` or, for `with=class`, `runClassFinetuneJob`
 * (the parent reads the class's photos from the database and sends them); the parent owns the
 * database, the lease and the decision to promote.
 */
import type { ClassFinetuneView } from '../core/training.ts';
import type { ClassFinetuneJobSpec } from '../trainer/class-finetune-job.ts';
import type { TrainingJobSpecInput } from '../trainer/job-spec.ts';

/** Why a job failed, as the chat explains it (`job.reason.*`). */
export const FAILURE_REASONS = [
  'nan',
  'disk',
  'dataset',
  'worker',
  'parameter',
  'other',
  // issue 16: fewer usable labelled photos than CLASS_MIN_PHOTOS after preprocessing
  'classdata',
] as const;
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

/** What a child runs: a training job (`runTrainingJob`) or a class fine-tune (issue 16). */
export type JobSpec = TrainingJobSpecInput | ClassFinetuneJobSpec;

/**
 * issue 16: what a `with=class` job reports (accuracies 0..1), for the final message, the job's
 * metrics and the version's: `finetuneOnClass`'s report without its history.
 */
export interface ClassFinetuneOutcome extends ClassFinetuneView {
  readonly photos: number;
  readonly students: number;
  readonly trainPhotos: number;
  /** Photos the preprocessing refused. */
  readonly skipped: number;
  readonly settings: Readonly<Record<string, number>>;
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
export type ToChild = { readonly type: 'start'; readonly spec: JobSpec };

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
      /** issue 16: set by a `with=class` job. */
      readonly classFinetune?: ClassFinetuneOutcome;
    }
  | {
      readonly type: 'failed';
      readonly reason: FailureReason;
      readonly message: string;
      /** For `dataset`: the command that downloads it. */
      readonly command?: string;
      /** Figures for the message (`classdata`: count, needed, missing). */
      readonly params?: Readonly<Record<string, number>>;
    };

/** A job's failure with its reason, as the parent rejects with it. */
export class JobFailure extends Error {
  override readonly name = 'JobFailure';
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly command?: string,
    readonly params?: Readonly<Record<string, number>>,
  ) {
    super(message);
  }
}
