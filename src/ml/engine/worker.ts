/**
 * One engine worker: its own TF.js with the wasm backend (one core), holding a replica of the
 * model. Answers {@link Request}s from `worker-pool.ts` one at a time.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setDropoutStep, StepSeededDropout } from '../architectures/dropout.ts';
import { registerConvGradientKernels } from '../kernels/conv-grads.ts';
import { getOptimizerSlots, setOptimizerSlots } from '../optimizer-state.ts';
import { createAdam } from '../fused-adam.ts';
import type { LossName, ModelSpec, OptimizerSpec, Request, Response, Shard } from './protocol.ts';
import { barrierWait } from './barrier.ts';

interface Training {
  readonly loss: LossName;
  readonly optimizer: tf.Optimizer;
  readonly slots: Float32Array;
  readonly barrier: Int32Array;
  readonly rank: number;
  readonly workers: number;
  readonly paramCount: number;
  /** Training steps run (all workers count the same). */
  step: number;
}

let model: tf.LayersModel | undefined;
let training: Training | undefined;

const port = parentPort;
if (port === null) {
  throw new Error('engine/worker.ts must run in a worker thread');
}

registerConvGradientKernels();
// Replicas deserialise Keras' Dropout as StepSeededDropout: tfjs's own, seeded, would draw one
// fixed mask for the whole run (see dropout.ts). Only this worker's registry is changed.
tf.serialization.registerClass(StepSeededDropout);
const ready = tf.setBackend('wasm');

port.on('message', (request: Request) => {
  void handle(request).then(
    ([response, transfer]) => port.postMessage(response, transfer),
    (error: unknown) =>
      port.postMessage({
        kind: 'error',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      } satisfies Response),
  );
});

async function handle(request: Request): Promise<[Response, ArrayBuffer[]]> {
  if (!(await ready)) {
    throw new Error('the wasm backend did not start in the worker');
  }
  switch (request.kind) {
    case 'load':
      await load(request.model);
      return [{ kind: 'ok' }, []];
    case 'train-setup':
      setUpTraining(request);
      return [{ kind: 'ok' }, []];
    case 'train-step':
      return [{ kind: 'loss', ...trainStep(request.shard, request.weight) }, []];
    case 'train-config': {
      const t = requireTraining();
      if (request.learningRate !== undefined) {
        // tfjs's optimizers keep their rate in a protected field; there is no public setter.
        (t.optimizer as unknown as { learningRate: number }).learningRate = request.learningRate;
      }
      if (request.step !== undefined) t.step = request.step;
      return [{ kind: 'ok' }, []];
    }
    case 'get-optimizer-weights': {
      const tensors = await getOptimizerSlots(requireTraining().optimizer);
      return [
        { kind: 'optimizer-weights', tensors },
        tensors.map((t) => t.values.buffer as ArrayBuffer),
      ];
    }
    case 'set-optimizer-weights': {
      await setOptimizerSlots(requireTraining().optimizer, request.tensors);
      return [{ kind: 'ok' }, []];
    }
    case 'predict': {
      const y = predict(request.x, request.xShape, request.batchSize);
      return [y, [y.y.buffer as ArrayBuffer]];
    }
    case 'get-weights': {
      const weights = requireModel()
        .getWeights()
        .map((w) => w.dataSync() as Float32Array);
      return [{ kind: 'weights', weights }, weights.map((w) => w.buffer as ArrayBuffer)];
    }
    case 'memory':
      return [{ kind: 'memory', numTensors: tf.memory().numTensors }, []];
  }
}

function requireTraining(): Training {
  if (training === undefined) {
    throw new Error('no training set up in this worker (train-setup first)');
  }
  return training;
}

function requireModel(): tf.LayersModel {
  if (model === undefined) {
    throw new Error('no model loaded in this worker');
  }
  return model;
}

async function load(spec: ModelSpec): Promise<void> {
  training?.optimizer.dispose();
  training = undefined;
  model?.dispose();
  model = undefined;
  const loaded = await tf.models.modelFromJSON(
    JSON.parse(spec.topology) as Parameters<typeof tf.models.modelFromJSON>[0],
  );
  const values = spec.weights.map((w, i) => tf.tensor(w, spec.shapes[i]));
  loaded.setWeights(values);
  tf.dispose(values);
  model = loaded;
}

function setUpTraining(request: Extract<Request, { kind: 'train-setup' }>): void {
  const m = requireModel();
  const paramCount = m.trainableWeights.reduce((n, w) => n + w.read().size, 0);
  const { name, learningRate } = request.optimizer;
  training?.optimizer.dispose();
  training = {
    loss: request.loss,
    optimizer: makeOptimizer({ name, learningRate }),
    slots: new Float32Array(request.gradients),
    barrier: new Int32Array(request.barrier),
    rank: request.rank,
    workers: request.workers,
    paramCount,
    step: 0,
  };
}

function makeOptimizer(spec: OptimizerSpec): tf.Optimizer {
  return spec.name === 'adam' ? createAdam(spec.learningRate) : tf.train.sgd(spec.learningRate);
}

/**
 * Gradients of this shard's mean loss times `weight` (its share of the batch) go to this worker's
 * slot; after a barrier each worker sums one slice of the parameters over all slots (always in
 * rank order, so every worker sees the same bits); after a second barrier every worker applies
 * the same averaged gradients with its own optimizer, so the replicas stay identical. Two
 * barriers a step (see the end of the step for why a third is not needed).
 */
function trainStep(shard: Shard, weight: number): { loss: number; acc: number } {
  const m = requireModel();
  const t = training;
  if (t === undefined) {
    throw new Error('train-step before train-setup');
  }
  const variables = m.trainableWeights.map((w) => w.read() as tf.Variable);
  // One dropout mask stream per worker and step: the shards of a batch draw different masks.
  setDropoutStep(m, t.step * t.workers + t.rank);
  t.step += 1;
  // Kept out of the gradient scope (closure-assigned, so an object rather than a `let`).
  const kept: { hits?: tf.Tensor } = {};
  let loss: number;
  let hitCount: number;
  try {
    const computed = tf.tidy(() => {
      const x = tf.tensor(shard.x, shard.xShape);
      const y = tf.tensor(shard.y, shard.yShape);
      const { value, grads } = tf.variableGrads(() => {
        const prediction = m.apply(x, { training: true }) as tf.Tensor;
        kept.hits = tf.keep(correctPredictions(t.loss, y, prediction));
        return tf.mul<tf.Scalar>(meanLoss(t.loss, y, prediction), weight);
      }, variables);
      const slot = new Float32Array(t.slots.buffer, t.rank * t.paramCount * 4, t.paramCount);
      let at = 0;
      for (const v of variables) {
        const g = grads[v.name];
        if (g === undefined) {
          throw new Error(`no gradient for ${v.name}`);
        }
        const values = g.dataSync();
        slot.set(values, at);
        at += values.length;
      }
      return { loss: value.dataSync()[0] ?? NaN };
    });
    loss = computed.loss;
    hitCount = kept.hits?.dataSync()[0] ?? NaN;
  } finally {
    kept.hits?.dispose();
  }
  const rows = shard.xShape[0] ?? 1;
  const acc = (hitCount / rows) * weight;
  barrierWait(t.barrier, t.workers);
  // Each worker reduces its slice of the parameters into the shared average.
  const average = new Float32Array(t.slots.buffer, t.workers * t.paramCount * 4, t.paramCount);
  const slice = Math.ceil(t.paramCount / t.workers);
  const start = Math.min(t.paramCount, t.rank * slice);
  const end = Math.min(t.paramCount, start + slice);
  for (let w = 0; w < t.workers; w++) {
    const other = new Float32Array(t.slots.buffer, w * t.paramCount * 4, t.paramCount);
    if (w === 0) {
      average.set(other.subarray(start, end), start);
    } else {
      for (let i = start; i < end; i++) {
        average[i]! += other[i]!;
      }
    }
  }
  barrierWait(t.barrier, t.workers);
  const named: tf.NamedTensorMap = {};
  let at = 0;
  for (const v of variables) {
    named[v.name] = tf.tensor(average.subarray(at, at + v.size), v.shape);
    at += v.size;
  }
  t.optimizer.applyGradients(named);
  tf.dispose(Object.values(named));
  // No third barrier: the next step writes the average only after its first barrier, which every
  // worker reaches only once it has read this step's average (the slots, written before that
  // barrier, are read only between the first and the second).
  return { loss, acc };
}

/** Rows whose top-1 class is the target's (Keras' categorical / sparse categorical accuracy). */
function correctPredictions(name: LossName, y: tf.Tensor, prediction: tf.Tensor): tf.Tensor {
  const predicted = tf.argMax(prediction, -1);
  const target =
    name === 'categoricalCrossentropy' ? tf.argMax(y, -1) : tf.cast(tf.reshape(y, [-1]), 'int32');
  return tf.sum(tf.cast(tf.equal(predicted, target), 'float32'));
}

/** Mean loss over the shard, as Keras computes it from softmax probabilities (clipped at 1e-7). */
function meanLoss(name: LossName, y: tf.Tensor, prediction: tf.Tensor): tf.Scalar {
  if (name === 'categoricalCrossentropy') {
    return tf.mean<tf.Scalar>(tf.metrics.categoricalCrossentropy(y, prediction));
  }
  const classes = prediction.shape.at(-1) ?? 1;
  const picked = tf.sum(
    tf.mul(tf.oneHot(tf.cast(tf.reshape(y, [-1]), 'int32'), classes), prediction),
    -1,
  );
  return tf.neg(tf.mean(tf.log(tf.clipByValue(picked, 1e-7, 1)))) as tf.Scalar;
}

function predict(
  x: Float32Array,
  xShape: number[],
  batchSize: number,
): Extract<Response, { kind: 'prediction' }> {
  const m = requireModel();
  return tf.tidy(() => {
    const y = m.predict(tf.tensor(x, xShape), { batchSize }) as tf.Tensor;
    return { kind: 'prediction', y: y.dataSync() as Float32Array, yShape: y.shape };
  });
}
