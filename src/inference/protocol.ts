/**
 * Messages between the {@link InferencePool} (`pool.ts`) and its workers (`worker.ts`). Image
 * bytes travel by transfer; results are structured-cloned.
 */
import type { ExplainOptions, Explanation } from '../explain/explain-image.ts';
import type { ProbabilityChartInput } from '../imaging/chart.ts';
import type { ImageLimits } from '../imaging/decode.ts';
import type { Classification } from '../ml/classify.ts';
import type { ModelMeta } from '../ml/model-meta.ts';
import type { LatencyOptions, ModelProfile } from '../ml/stats.ts';

/** Where a worker finds its models (the same folders as the main thread's registry). */
export interface WorkerModels {
  readonly modelsDir: string;
  readonly dataDirs: readonly string[];
}

/** The data a worker receives when it starts (`workerData`). */
export interface InferenceWorkerData extends WorkerModels {
  /** Models loaded (and warmed up) before the worker says it is ready. */
  readonly preload: readonly string[];
  /** The profiling lane: the thread lowers its own scheduling priority (nice 19). */
  readonly lowPriority?: boolean;
  /**
   * Promoted model versions served instead of the shipped folders (issue 14): model id -> the
   * version and its folder. A worker started (or replaced) later loads these.
   */
  readonly served?: Readonly<Record<string, ServedVersion>>;
}

/** A model version other than the shipped one: `<DATA_DIR>/models/<id>/<n>/`. */
export interface ServedVersion {
  readonly version: string;
  /** The version's folder; absent for the shipped version `0`. */
  readonly dir?: string;
}

/** One job for a worker. */
export type InferenceJob =
  | {
      readonly kind: 'classify';
      readonly modelId: string;
      readonly bytes: Uint8Array;
      readonly limits: ImageLimits;
      readonly topK: number;
    }
  | {
      readonly kind: 'explain';
      readonly modelId: string;
      readonly bytes: Uint8Array;
      readonly limits: ImageLimits;
      readonly options: ExplainOptions;
    }
  | { readonly kind: 'profile'; readonly modelId: string; readonly latency: LatencyOptions }
  /** The probability chart of `/predict` (vega's layout is JavaScript: it would hold the loop). */
  | { readonly kind: 'chart'; readonly input: ProbabilityChartInput }
  /** Loads the model's current files again and swaps them in once loaded. */
  | {
      readonly kind: 'reload';
      readonly modelId: string;
      /** Serve this version from now on (a promotion or rollback); absent: re-read the files. */
      readonly serve?: ServedVersion;
    }
  | { readonly kind: 'memory' };

/** A job with the id its answer carries. */
export type WorkerRequest = InferenceJob & { readonly id: number };

/** What each job kind answers. */
export interface JobResults {
  classify: {
    readonly meta: ModelMeta;
    /** The exact model version that answered (`0`: the shipped folder). */
    readonly version: string;
    readonly result: Classification;
  };
  explain: Explanation;
  profile: ModelProfile;
  chart: Uint8Array;
  reload: { readonly meta: ModelMeta; readonly version: string };
  memory: { readonly numTensors: number; readonly numBytes: number };
}

/** A worker's answer to one request. */
export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly value: JobResults[keyof JobResults] }
  | {
      readonly id: number;
      readonly ok: false;
      /** Set for a `UserError`: rebuilt as one on the main thread. */
      readonly userError?: {
        readonly id: string;
        readonly message: string;
        readonly params: Readonly<Record<string, string | number>>;
      };
      readonly message: string;
    }
  /** Sent once, after the preloaded models are in memory. */
  | { readonly id: -1; readonly ok: true; readonly value: 'ready' };
