import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import type { PRNG } from 'seedrandom';
import { setDropoutStep } from '../ml/architectures/dropout.ts';
import { createParallelModel } from '../ml/engine/parallel-model.ts';
import { getOptimizerSlots, setOptimizerSlots } from '../ml/optimizer-state.ts';
import { createAdam } from '../ml/fused-adam.ts';
import type { NamedArray, ParallelModel } from '../ml/engine/parallel-model.ts';

/** Images and labels in memory, as the dataset loaders return them. */
export interface LabelledImages {
  /** uint8 `[count, height, width, channels]` row-major, 0..255. */
  readonly images: Uint8Array;
  /** uint8 `[count]` class indices. */
  readonly labels: Uint8Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/** Fills `out` (float32 `[indices.length, h, w, c]`, [0, 1]) with the samples `indices`. */
export type BatchFiller = (indices: ArrayLike<number>, out: Float32Array, rng: PRNG) => void;

/** Model inputs that belong to no class; see {@link TrainOptions.outliers}. */
export interface OutlierSet {
  /** float32 `[count, height, width, channels]`, in the model's input range. */
  readonly inputs: Float32Array;
  readonly count: number;
  readonly perBatch: number;
}

/** Per-epoch figures, as Keras' `History`. */
export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  readonly acc: number;
  readonly valLoss: number;
  readonly valAcc: number;
  readonly lr: number;
  /** Wall time of the epoch, seconds. */
  readonly seconds: number;
  /** Training throughput, samples per second. */
  readonly samplesPerSec: number;
}

/** Progress events for a progress bar. */
export type TrainProgress =
  | {
      readonly kind: 'epoch-start';
      readonly epoch: number;
      readonly epochs: number;
      readonly batches: number;
    }
  | {
      readonly kind: 'batch';
      /** 0-based epoch. */
      readonly epoch: number;
      /** 1-based batch of the epoch, of `batches`. */
      readonly batch: number;
      readonly batches: number;
      /** Running means over the epoch so far. */
      readonly loss: number;
      readonly acc: number;
    }
  | { readonly kind: 'epoch-end'; readonly record: EpochRecord };

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Share of the training set held out for validation (Keras' `validation_split`), 0..1. */
  readonly validationSplit: number;
  readonly seed: number;
  /** Learning rate of epoch `e` (0-based). */
  readonly learningRate: (epoch: number) => number;
  /** Builds training batches (augmentation goes here); validation always uses {@link plainFiller}. */
  readonly trainFiller?: BatchFiller;
  readonly onProgress?: (p: TrainProgress) => void;
  /**
   * Outlier Exposure (Hendrycks et al. 2019, "Deep Anomaly Detection with Outlier Exposure"):
   * inputs that belong to no class, added `perBatch` at a time to every training batch with the
   * uniform distribution as their target, so the softmax learns to be unsure off the data.
   */
  readonly outliers?: OutlierSet;
  /** Called after each epoch with the model; e.g. to keep the best weights. */
  readonly onEpochEnd?: (record: EpochRecord, model: tf.LayersModel) => Promise<void> | void;
  /**
   * Early stopping on validation accuracy, as Keras' `EarlyStopping(monitor='val_accuracy',
   * patience, restore_best_weights=True)`: training stops after `patience` epochs without a new
   * best, and the model ends with the weights of its best epoch. Needs a validation split.
   */
  readonly earlyStopping?: { readonly patience: number };
  /** State of an interrupted run to go on from (see {@link TrainOptions.onCheckpoint}). */
  readonly resume?: TrainCheckpoint;
  /**
   * Called after every epoch with everything needed to go on after a kill: the weights, the
   * optimizer's moments, the random generator, the history and the best epoch so far.
   */
  readonly onCheckpoint?: (checkpoint: TrainCheckpoint) => Promise<void>;
  /**
   * Worker threads to train on (one core each; default 1: the model trains in this thread).
   * Above 1, synchronous data parallelism over {@link ParallelModel} replicas: each batch is split
   * between the workers and their gradients averaged. Without dropout or batch norm the weights
   * follow the one-worker path up to float rounding; with them, each worker draws its own dropout
   * masks and normalizes by its shard's statistics (as PyTorch's DistributedDataParallel without
   * SyncBatchNorm), and the moving statistics kept are worker 0's. A last batch with fewer rows
   * than workers is left out of that epoch. At most `batchSize`.
   */
  readonly workers?: number;
  /**
   * Stops the run between batches: checked before each epoch and after each batch (after its
   * progress event), so an abort takes effect within one batch. The run then rejects with the
   * signal's reason, without a checkpoint of the unfinished epoch: the last one written stays the
   * one to resume.
   */
  readonly signal?: AbortSignal;
}

/** A tensor's values outside the engine (no disposal needed), e.g. for a checkpoint file. */
export type HostTensor = NamedArray;

/** A training run's state after a whole epoch; plain data, serialised by `checkpoint.ts`. */
export interface TrainCheckpoint {
  /** Epochs completed. */
  readonly epochsDone: number;
  readonly history: readonly EpochRecord[];
  /** `seedrandom`'s state object after the last epoch. */
  readonly rngState: object;
  /** The model's weights, in `model.weights` order. */
  readonly weights: readonly HostTensor[];
  /** The optimizer's `getWeights()` (Adam: the step count, then first and second moments). */
  readonly optimizer: readonly HostTensor[];
  /** The best epoch by validation accuracy so far, with its weights (early stopping). */
  readonly best?: {
    readonly epoch: number;
    readonly valAcc: number;
    readonly weights: readonly HostTensor[];
  };
}

/** Result of {@link trainClassifier}. */
export interface TrainResult {
  /** Every epoch, including those of the run it resumed. */
  readonly history: EpochRecord[];
  /** Epoch (1-based) whose weights the model holds at the end: the last, or the best one. */
  readonly keptEpoch: number;
  /** Why the run ended. */
  readonly stopped: 'completed' | 'early-stopping';
  /** Wall time of the whole run, seconds. */
  readonly seconds: number;
  /** Indices of the samples held out for validation. */
  readonly validationIndices: Uint32Array;
}

/** The data as it is: bytes divided by 255. */
export function plainFiller(data: LabelledImages): BatchFiller {
  const per = data.height * data.width * data.channels;
  return (indices, out) => {
    for (let k = 0; k < indices.length; k++) {
      const base = (indices[k] ?? 0) * per;
      for (let j = 0; j < per; j++) out[k * per + j] = (data.images[base + j] ?? 0) / 255;
    }
  };
}

/** Fisher-Yates shuffle of `0..n-1` with a seeded generator. */
export function shuffledIndices(n: number, rng: PRNG): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i] ?? 0;
    a[i] = a[j] ?? 0;
    a[j] = t;
  }
  return a;
}

/**
 * Splits `0..count-1` as Keras' `fit(validation_split=...)` does after shuffling: a seeded
 * permutation (the first draw from `rng`), its last `share` held out for validation.
 * `trainClassifier` draws it from `seedrandom(String(seed))`, so the split of a finished run can
 * be drawn again from its seed.
 */
export function splitValidation(
  count: number,
  share: number,
  rng: PRNG,
): { train: Uint32Array; validation: Uint32Array } {
  const all = shuffledIndices(count, rng);
  const cut = count - Math.round(count * share);
  return { train: all.slice(0, cut), validation: all.slice(cut) };
}

/** A batch as host arrays: inputs float32 `[n, h, w, c]` and one-hot targets `[n, classes]`. */
interface HostBatch {
  readonly x: Float32Array;
  readonly xShape: [number, number, number, number];
  readonly y: Float32Array;
  readonly yShape: [number, number];
}

/** A host batch as tensors (the caller disposes them). */
function hostBatchTensors(b: HostBatch): { x: tf.Tensor4D; y: tf.Tensor2D } {
  return { x: tf.tensor4d(b.x, b.xShape), y: tf.tensor2d(b.y, b.yShape) };
}

function batchArrays(
  data: LabelledImages,
  indices: Uint32Array,
  fill: BatchFiller,
  rng: PRNG,
  numClasses: number,
  outliers?: OutlierSet,
): HostBatch {
  const per = data.height * data.width * data.channels;
  const m = outliers ? Math.min(outliers.perBatch, outliers.count) : 0;
  const n = indices.length;
  const buf = new Float32Array((n + m) * per);
  fill(indices, buf, rng);
  const target = new Float32Array((n + m) * numClasses);
  for (let k = 0; k < n; k++) target[k * numClasses + (data.labels[indices[k] ?? 0] ?? 0)] = 1;
  for (let k = 0; k < m && outliers; k++) {
    const o = Math.floor(rng() * outliers.count);
    buf.set(outliers.inputs.subarray(o * per, (o + 1) * per), (n + k) * per);
    target.fill(1 / numClasses, (n + k) * numClasses, (n + k + 1) * numClasses);
  }
  return {
    x: buf,
    xShape: [n + m, data.height, data.width, data.channels],
    y: target,
    yShape: [n + m, numClasses],
  };
}

/** What runs the training steps: the model in this thread, or its replicas in workers. */
interface StepRunner {
  /** Rows a batch needs at least. */
  readonly minRows: number;
  /** Sets the learning rate and the count of steps already run (dropout masks). */
  configure(learningRate: number, step: number): Promise<void>;
  /** One step; the batch's loss and accuracy before the update. */
  step(batch: HostBatch): Promise<{ loss: number; acc: number }>;
  /** Brings the model in this thread up to date with the weights trained. */
  sync(): Promise<void>;
  /** The optimizer's state, copied out. */
  optimizerWeights(): Promise<HostTensor[]>;
  dispose(): Promise<void>;
}

/** Adam on the model itself, through `trainOnBatch`. */
async function localRunner(
  model: tf.LayersModel,
  learningRate: number,
  resume?: TrainCheckpoint,
): Promise<StepRunner> {
  const optimizer = createAdam(learningRate);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  if (resume) await setOptimizerSlots(optimizer, resume.optimizer);
  return {
    minRows: 1,
    configure: (lr, step) => {
      // tfjs's Adam keeps its learning rate in a protected field; there is no public setter.
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      setDropoutStep(model, step);
      return Promise.resolve();
    },
    step: async (b) => {
      const { x, y } = hostBatchTensors(b);
      try {
        const out = (await model.trainOnBatch(x, y)) as number[];
        return { loss: out[0] ?? NaN, acc: out[1] ?? NaN };
      } finally {
        tf.dispose([x, y]);
      }
    },
    sync: () => Promise.resolve(),
    optimizerWeights: () => getOptimizerSlots(optimizer),
    dispose: () => {
      optimizer.dispose();
      return Promise.resolve();
    },
  };
}

/** Adam on replicas of the model in `workers` threads ({@link ParallelModel}). */
async function parallelRunner(
  model: tf.LayersModel,
  workers: number,
  learningRate: number,
  resume?: TrainCheckpoint,
): Promise<StepRunner> {
  const parallel: ParallelModel = await createParallelModel(model, { workers });
  try {
    await parallel.compile({
      loss: 'categoricalCrossentropy',
      optimizer: { name: 'adam', learningRate },
    });
    if (resume) await parallel.setOptimizerWeights(resume.optimizer);
  } catch (error) {
    await parallel.dispose();
    throw error;
  }
  return {
    minRows: workers,
    configure: (lr, step) => parallel.configureTraining({ learningRate: lr, step }),
    step: (b) =>
      parallel.trainStep({ values: b.x, shape: b.xShape }, { values: b.y, shape: b.yShape }),
    sync: async () => {
      const values = await parallel.getWeights(0);
      const current = model.getWeights();
      const tensors = values.map((v, i) => tf.tensor(v, current[i]?.shape));
      model.setWeights(tensors);
      tf.dispose(tensors);
    },
    optimizerWeights: () => parallel.getOptimizerWeights(),
    dispose: () => parallel.dispose(),
  };
}

/**
 * Evaluates a softmax classifier on `indices` of `data` in batches.
 * @returns mean categorical cross-entropy and top-1 accuracy (0..1).
 */
export async function evaluateClassifier(
  model: tf.LayersModel,
  data: LabelledImages,
  indices: Uint32Array = Uint32Array.from({ length: data.count }, (_, i) => i),
  batchSize = 500,
): Promise<{ loss: number; acc: number }> {
  const numClasses = outputUnits(model);
  const fill = plainFiller(data);
  const rng = seedrandom('eval');
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < indices.length; i += batchSize) {
    const idx = indices.subarray(i, Math.min(i + batchSize, indices.length));
    const { x, y } = hostBatchTensors(batchArrays(data, idx, fill, rng, numClasses));
    const [l, c] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
      const p = model.predict(x) as tf.Tensor2D;
      const loss = tf.metrics.categoricalCrossentropy(y, p).sum();
      const hits = tf.equal(p.argMax(-1), y.argMax(-1)).sum();
      return [loss, hits];
    });
    lossSum += (await l.data())[0] ?? 0;
    correct += (await c.data())[0] ?? 0;
    tf.dispose([x, y, l, c]);
    await tf.nextFrame();
  }
  return { loss: lossSum / indices.length, acc: correct / indices.length };
}

/** Number of classes of a classifier's output layer. */
export function outputUnits(model: tf.LayersModel): number {
  const shape = model.outputs[0]?.shape;
  const n = shape?.[shape.length - 1];
  if (typeof n !== 'number') throw new Error('model has no fixed-size output');
  return n;
}

/**
 * Trains a softmax classifier with Adam and categorical cross-entropy, mini-batch by
 * mini-batch (`trainOnBatch`, or with `workers` above 1 data-parallel on worker threads, see
 * {@link TrainOptions.workers}), holding out the last `validationSplit` of a seeded permutation
 * for validation, as Keras' `fit(validation_split=...)` does after shuffling. Validation runs in
 * this thread after each epoch, on the weights trained so far.
 *
 * With `onCheckpoint`, hands over the whole state after every epoch; with `resume`, goes on from
 * such a state (weights, Adam's moments and step, the random generator, history, best epoch) and
 * ends with the same weights as a run never interrupted. With `earlyStopping`, stops after
 * `patience` epochs without a better validation accuracy and restores the best epoch's weights.
 *
 * Tensors: every batch is disposed; `tf.memory().numTensors` is the same before and after,
 * apart from the optimizer's slots, which are disposed at the end.
 * @throws {Error} when early stopping is asked without a validation split, or `resume` holds
 *   weights that do not fit `model`.
 * @throws {RangeError} when `workers` is not a positive integer or exceeds `batchSize`.
 * @throws the reason of {@link TrainOptions.signal} when it is aborted (an `AbortError`
 *   `DOMException` unless given another).
 */
export async function trainClassifier(
  model: tf.LayersModel,
  data: LabelledImages,
  opt: TrainOptions,
): Promise<TrainResult> {
  let rng = seedrandom(String(opt.seed), { state: true });
  const numClasses = outputUnits(model);
  const { train: trainIdx, validation: valIdx } = splitValidation(
    data.count,
    opt.validationSplit,
    rng,
  );
  const nVal = valIdx.length;
  if (opt.earlyStopping && nVal === 0) {
    throw new Error('early stopping needs a validation split above 0');
  }
  const workers = opt.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) {
    throw new RangeError(`workers must be a positive integer, got ${workers}`);
  }
  if (workers > opt.batchSize) {
    throw new RangeError(`a batch of ${opt.batchSize} cannot be split between ${workers} workers`);
  }
  const history: EpochRecord[] = [];
  let best: TrainCheckpoint['best'];
  if (opt.resume) {
    setHostWeights(model, opt.resume.weights);
    rng = seedrandom('', { state: opt.resume.rngState as seedrandom.State.Arc4 });
    history.push(...opt.resume.history);
    best = opt.resume.best;
  }
  const runner =
    workers > 1
      ? await parallelRunner(model, workers, opt.learningRate(0), opt.resume)
      : await localRunner(model, opt.learningRate(0), opt.resume);
  const fill = opt.trainFiller ?? plainFiller(data);
  const t0 = performance.now();
  const batches = Math.ceil(trainIdx.length / opt.batchSize);
  let stopped: TrainResult['stopped'] = 'completed';
  try {
    for (let epoch = history.length; epoch < opt.epochs; epoch++) {
      if (opt.earlyStopping && best && epoch - best.epoch >= opt.earlyStopping.patience) {
        stopped = 'early-stopping';
        break;
      }
      opt.signal?.throwIfAborted();
      const lr = opt.learningRate(epoch);
      await runner.configure(lr, epoch * batches);
      opt.onProgress?.({ kind: 'epoch-start', epoch, epochs: opt.epochs, batches });
      const order = shuffledIndices(trainIdx.length, rng);
      const te = performance.now();
      let lossSum = 0;
      let accSum = 0;
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        const from = b * opt.batchSize;
        const n = Math.min(opt.batchSize, trainIdx.length - from);
        const idx = new Uint32Array(n);
        for (let k = 0; k < n; k++) idx[k] = trainIdx[order[from + k] ?? 0] ?? 0;
        const batch = batchArrays(data, idx, fill, rng, numClasses, opt.outliers);
        // Only an epoch's last batch can be too small to split; it is left out.
        if (batch.xShape[0] >= runner.minRows) {
          const { loss, acc } = await runner.step(batch);
          lossSum += loss * n;
          accSum += acc * n;
          seen += n;
        }
        opt.onProgress?.({
          kind: 'batch',
          epoch,
          batch: b + 1,
          batches,
          loss: lossSum / seen,
          acc: accSum / seen,
        });
        // On one thread a batch's awaits are microtasks only: let the event loop run once so an
        // abort arriving as an event (SIGINT, a timer, a request) is seen after this batch, not
        // at the end of the epoch. Costs microseconds a batch.
        if (opt.signal) await new Promise<void>((resolve) => setImmediate(resolve));
        opt.signal?.throwIfAborted();
      }
      const seconds = (performance.now() - te) / 1000;
      await runner.sync();
      const val =
        nVal > 0 ? await evaluateClassifier(model, data, valIdx) : { loss: NaN, acc: NaN };
      const record: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / seen,
        acc: accSum / seen,
        valLoss: val.loss,
        valAcc: val.acc,
        lr,
        seconds,
        samplesPerSec: seen / seconds,
      };
      history.push(record);
      const improved = opt.earlyStopping && (!best || record.valAcc > best.valAcc);
      // One host copy of the weights serves both the best epoch and the checkpoint.
      const weights = improved || opt.onCheckpoint ? await hostWeights(model.weights) : undefined;
      if (improved && weights) {
        best = { epoch: record.epoch, valAcc: record.valAcc, weights };
      }
      opt.onProgress?.({ kind: 'epoch-end', record });
      await opt.onEpochEnd?.(record, model);
      if (opt.onCheckpoint) {
        await opt.onCheckpoint({
          epochsDone: epoch + 1,
          history: [...history],
          rngState: rng.state(),
          weights: weights ?? (await hostWeights(model.weights)),
          optimizer: await runner.optimizerWeights(),
          ...(best ? { best } : {}),
        });
      }
    }
    if (opt.earlyStopping && best && best.epoch < history.length)
      setHostWeights(model, best.weights);
  } finally {
    await runner.dispose();
  }
  return {
    history,
    keptEpoch: best && opt.earlyStopping ? best.epoch : history.length,
    stopped,
    seconds: (performance.now() - t0) / 1000,
    validationIndices: valIdx,
  };
}

/**
 * Copies variables out of the engine: float32 host copies with their names and shapes, in the
 * order given (`model.weights` order for a whole model). Creates no tensors that outlive it.
 */
export async function hostWeights(vars: readonly tf.LayerVariable[]): Promise<HostTensor[]> {
  const out: HostTensor[] = [];
  for (const v of vars) {
    const t = v.read();
    out.push({
      name: v.originalName,
      shape: [...t.shape],
      values: Float32Array.from(await t.data()),
    });
  }
  return out;
}

/**
 * Why host copies of weights cannot be set into `model` (another architecture: another count of
 * weights or another shape), or `undefined` when they fit, in `model.weights` order.
 * @param source what the weights come from, for the message (a checkpoint, a model's folder).
 */
export function weightsMismatch(
  model: tf.LayersModel,
  weights: readonly HostTensor[],
  source = 'checkpoint',
): string | undefined {
  const vars = model.weights;
  if (vars.length !== weights.length) {
    return `${source} holds ${weights.length} weights, the model has ${vars.length}`;
  }
  const i = vars.findIndex((v, k) => weights[k]?.shape.join('x') !== v.shape.join('x'));
  if (i < 0) return undefined;
  const v = vars[i]!;
  return `${source} weight ${i} (${weights[i]?.name}) does not fit ${v.originalName} [${v.shape.join(', ')}]`;
}

/**
 * Sets a model's weights from host copies, checking names and shapes.
 * @throws {Error} when the checkpoint is of another architecture ({@link weightsMismatch}).
 */
export function setHostWeights(model: tf.LayersModel, weights: readonly HostTensor[]): void {
  const mismatch = weightsMismatch(model, weights);
  if (mismatch) throw new Error(mismatch);
  const vars = model.weights;
  // Variable by variable: `model.setWeights` takes layer order, which differs from
  // `model.weights` (all trainable, then all non-trainable) once a model has batch norm.
  vars.forEach((v, i) => {
    const w = weights[i];
    if (!w) return;
    const t = tf.tensor(w.values, [...w.shape]);
    v.write(t);
    t.dispose();
  });
}
