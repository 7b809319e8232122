import type { OptimizerSlot } from '../optimizer-state.ts';

/** Messages between {@link WorkerPool} and `worker.ts`. Typed arrays travel by transfer. */

/** A model as it crosses threads: Keras-style JSON topology plus weight values in order. */
export interface ModelSpec {
  /** `model.toJSON(null, false)`. */
  readonly topology: string;
  /** `model.getWeights()` values, in that order. */
  readonly weights: readonly Float32Array[];
  /** Their shapes. */
  readonly shapes: readonly number[][];
}

/** Loss functions the data-parallel trainer computes in each worker (Keras names). */
export type LossName = 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy';

/** Optimizers the data-parallel trainer can run (each worker applies the same update). */
export interface OptimizerSpec {
  readonly name: 'adam' | 'sgd';
  readonly learningRate: number;
}

/** A named float32 array with its shape (an optimizer's slot, for instance). */
export type NamedArray = OptimizerSlot;

/** A batch shard: inputs `[n, ...]` and targets `[n, ...]`, float32. */
export interface Shard {
  readonly x: Float32Array;
  readonly xShape: number[];
  readonly y: Float32Array;
  readonly yShape: number[];
}

export type Request =
  | { readonly kind: 'load'; readonly model: ModelSpec }
  | {
      readonly kind: 'train-setup';
      readonly loss: LossName;
      readonly optimizer: OptimizerSpec;
      /** Shared gradient buffer: one slot of `paramCount` floats per worker, then the average. */
      readonly gradients: SharedArrayBuffer;
      /** Shared barrier state (two int32s). */
      readonly barrier: SharedArrayBuffer;
      readonly rank: number;
      readonly workers: number;
    }
  | { readonly kind: 'train-step'; readonly shard: Shard; readonly weight: number }
  | {
      readonly kind: 'train-config';
      /** The optimizer's learning rate from now on. */
      readonly learningRate?: number;
      /** Training steps already run (sets every `StepSeededDropout`'s mask stream). */
      readonly step?: number;
    }
  | { readonly kind: 'get-optimizer-weights' }
  | { readonly kind: 'set-optimizer-weights'; readonly tensors: readonly NamedArray[] }
  | {
      readonly kind: 'predict';
      readonly x: Float32Array;
      readonly xShape: number[];
      readonly batchSize: number;
    }
  | { readonly kind: 'get-weights' }
  | { readonly kind: 'memory' };

export type Response =
  | { readonly kind: 'ok' }
  | {
      readonly kind: 'loss';
      /** This shard's mean loss times its share of the batch. */
      readonly loss: number;
      /** This shard's top-1 accuracy times its share of the batch. */
      readonly acc: number;
    }
  | { readonly kind: 'optimizer-weights'; readonly tensors: NamedArray[] }
  | { readonly kind: 'prediction'; readonly y: Float32Array; readonly yShape: number[] }
  | { readonly kind: 'weights'; readonly weights: Float32Array[] }
  | { readonly kind: 'memory'; readonly numTensors: number }
  | { readonly kind: 'error'; readonly message: string };
