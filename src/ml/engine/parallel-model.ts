import { availableParallelism } from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import type { LossName, NamedArray, OptimizerSpec, Response } from './protocol.ts';
import { WorkerPool, modelSpec, splitRows } from './worker-pool.ts';

export type { LossName, NamedArray, OptimizerSpec } from './protocol.ts';

/** Options of {@link createParallelModel}. */
export interface ParallelModelOptions {
  /** Worker threads, one core each; default: every core (`os.availableParallelism()`). */
  readonly workers?: number;
}

/** Options of {@link ParallelModel.compile}. */
export interface ParallelTrainingOptions {
  readonly loss: LossName;
  readonly optimizer: OptimizerSpec;
}

/** A float32 array with its shape, e.g. images `[n, 32, 32, 3]`. */
export interface Batch {
  readonly values: Float32Array;
  readonly shape: readonly number[];
}

function expect<K extends Response['kind']>(
  response: Response,
  kind: K,
): Extract<Response, { kind: K }> {
  if (response.kind !== kind) {
    throw new Error(`engine worker answered '${response.kind}', expected '${kind}'`);
  }
  return response as Extract<Response, { kind: K }>;
}

/**
 * Replicas of one Keras-style model in worker threads, each on its own TF.js wasm backend, so a
 * model uses every core: inference splits a batch across the workers; training is synchronous
 * data parallelism (each worker takes a slice of the batch, gradients are averaged in shared
 * memory, every replica applies the same update — Goyal et al., "Accurate, Large Minibatch SGD"
 * 2017, §3 — so the replicas hold bit-identical trainable weights after each step).
 *
 * Batch-norm moving statistics are per replica (each sees its slice), as in PyTorch's
 * DistributedDataParallel; {@link getWeights} returns worker 0's, as DDP broadcasts rank 0's.
 * Create with {@link createParallelModel}.
 */
export class ParallelModel {
  private compiled = false;

  /** @internal use {@link createParallelModel}. */
  constructor(
    private readonly pool: WorkerPool,
    /** Trainable parameters of the model. */
    readonly paramCount: number,
  ) {}

  /** Number of worker threads. */
  get workers(): number {
    return this.pool.size;
  }

  /**
   * Predicts a batch, split in contiguous slices over the workers.
   *
   * @param x inputs `[n, ...inputShape]`.
   * @param batchSize per-worker `predict` batch size.
   * @returns outputs `[n, ...outputShape]`, in input order.
   */
  async predict(x: Batch, batchSize = 256): Promise<Batch> {
    const n = x.shape[0] ?? 0;
    const rowSize = n === 0 ? 0 : x.values.length / n;
    const ranges = splitRows(n, this.pool.size);
    const parts = await Promise.all(
      ranges.map(([start, end], rank) => {
        const values = x.values.slice(start * rowSize, end * rowSize);
        return this.pool
          .request(
            rank,
            { kind: 'predict', x: values, xShape: [end - start, ...x.shape.slice(1)], batchSize },
            [values.buffer],
          )
          .then((r) => expect(r, 'prediction'));
      }),
    );
    const total = parts.reduce((s, p) => s + p.y.length, 0);
    const values = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      values.set(p.y, at);
      at += p.y.length;
    }
    const shape = parts[0] === undefined ? [0] : [n, ...parts[0].yShape.slice(1)];
    return { values, shape };
  }

  /** Sets the loss and optimizer every replica trains with (a fresh optimizer state). */
  async compile(options: ParallelTrainingOptions): Promise<void> {
    // One slot of gradients per worker, then their average; two int32s of barrier state.
    const gradients = new SharedArrayBuffer(4 * this.paramCount * (this.pool.size + 1));
    const barrier = new SharedArrayBuffer(8);
    await Promise.all(
      Array.from({ length: this.pool.size }, (_, rank) =>
        this.pool.request(rank, {
          kind: 'train-setup',
          loss: options.loss,
          optimizer: options.optimizer,
          gradients,
          barrier,
          rank,
          workers: this.pool.size,
        }),
      ),
    );
    this.compiled = true;
  }

  /**
   * One synchronous data-parallel step on a batch (at least one row per worker).
   *
   * @param x inputs `[n, ...inputShape]`.
   * @param y targets: one-hot `[n, classes]` (categorical) or class indices `[n]` / `[n, 1]`.
   * @returns the batch's mean loss before the update.
   * @throws {RangeError} when the batch has fewer rows than workers or targets than inputs.
   */
  async trainBatch(x: Batch, y: Batch): Promise<number> {
    return (await this.trainStep(x, y)).loss;
  }

  /**
   * {@link trainBatch}, also returning the batch's top-1 accuracy (0..1) before the update, as
   * Keras' `trainOnBatch` reports its `accuracy` metric.
   */
  async trainStep(x: Batch, y: Batch): Promise<{ loss: number; acc: number }> {
    if (!this.compiled) {
      throw new Error('call compile() before trainBatch()');
    }
    const n = x.shape[0] ?? 0;
    if (n < this.pool.size || y.shape[0] !== n) {
      throw new RangeError(
        `a batch needs at least ${this.pool.size} rows and as many targets; got ${n} and ${y.shape[0]}`,
      );
    }
    const xRow = x.values.length / n;
    const yRow = y.values.length / n;
    const parts = await Promise.all(
      splitRows(n, this.pool.size).map(([start, end], rank) => {
        const xs = x.values.slice(start * xRow, end * xRow);
        const ys = y.values.slice(start * yRow, end * yRow);
        const shard = {
          x: xs,
          xShape: [end - start, ...x.shape.slice(1)],
          y: ys,
          yShape: [end - start, ...y.shape.slice(1)],
        };
        return this.pool
          .request(rank, { kind: 'train-step', shard, weight: (end - start) / n }, [
            xs.buffer,
            ys.buffer,
          ])
          .then((r) => expect(r, 'loss'));
      }),
    );
    return {
      loss: parts.reduce((a, p) => a + p.loss, 0),
      acc: parts.reduce((a, p) => a + p.acc, 0),
    };
  }

  /**
   * Sets, in every replica, the learning rate and/or the count of training steps already run
   * (from which `StepSeededDropout` layers draw their masks; set it when resuming a run).
   */
  async configureTraining(options: { learningRate?: number; step?: number }): Promise<void> {
    this.requireCompiled();
    await this.pool.broadcast({ kind: 'train-config', ...options });
  }

  /** The optimizer's state (Adam: step count, then moments), from replica 0; all are equal. */
  async getOptimizerWeights(): Promise<NamedArray[]> {
    this.requireCompiled();
    return expect(
      await this.pool.request(0, { kind: 'get-optimizer-weights' }),
      'optimizer-weights',
    ).tensors;
  }

  /** Sets every replica's optimizer state, as {@link getOptimizerWeights} returned it. */
  async setOptimizerWeights(tensors: readonly NamedArray[]): Promise<void> {
    this.requireCompiled();
    await this.pool.broadcast({ kind: 'set-optimizer-weights', tensors });
  }

  private requireCompiled(): void {
    if (!this.compiled) throw new Error('call compile() first');
  }

  /** The weights of replica `rank` (default 0), in `model.getWeights()` order. */
  async getWeights(rank = 0): Promise<Float32Array[]> {
    return expect(await this.pool.request(rank, { kind: 'get-weights' }), 'weights').weights;
  }

  /** Live tensors in each worker (for leak checks). */
  async numTensors(): Promise<number[]> {
    const answers = await this.pool.broadcast({ kind: 'memory' });
    return answers.map((a) => expect(a, 'memory').numTensors);
  }

  /** Stops the workers. */
  dispose(): Promise<void> {
    return this.pool.terminate();
  }
}

/**
 * Starts worker threads and loads a replica of `model` (topology and current weights) into each.
 *
 * @example
 * const parallel = await createParallelModel(buildResNet20(), { workers: 2 });
 * await parallel.compile({ loss: 'categoricalCrossentropy', optimizer: { name: 'adam', learningRate: 1e-3 } });
 * const loss = await parallel.trainBatch({ values: xs, shape: [128, 32, 32, 3] }, { values: ys, shape: [128, 10] });
 * const probs = await parallel.predict({ values: images, shape: [1000, 32, 32, 3] });
 * await parallel.dispose();
 */
export async function createParallelModel(
  model: tf.LayersModel,
  options: ParallelModelOptions = {},
): Promise<ParallelModel> {
  const pool = new WorkerPool(options.workers ?? availableParallelism());
  try {
    await pool.broadcast({ kind: 'load', model: modelSpec(model) });
  } catch (error) {
    await pool.terminate();
    throw error;
  }
  return new ParallelModel(
    pool,
    model.trainableWeights.reduce((n, w) => n + w.read().size, 0),
  );
}
