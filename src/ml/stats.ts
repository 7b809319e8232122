/**
 * Architecture statistics of a TF.js layers model, and its measured speed: what Keras'
 * `model.summary()`, PyTorch's `torchinfo.summary()` and `keras-flops` print, for any
 * `tf.LayersModel` (functional, sequential, or with models nested as layers).
 *
 * What is counted, explicitly:
 * - **MACs** (multiply-accumulates) of the layers that multiply by weights, for one image:
 *   Conv1D/2D/3D `out elements x (kernel elements x C_in / groups)` (Conv2D:
 *   `H_out·W_out·C_out·(k_h·k_w·C_in/groups)`), DepthwiseConv2D `H_out·W_out·C_in·m·k_h·k_w`,
 *   SeparableConv2D its depthwise part plus the pointwise `H_out·W_out·C_in·m·C_out`,
 *   Conv2DTranspose `H_in·W_in·C_in·k_h·k_w·C_out`, Dense `in x out` (per position when the input
 *   has more than one dimension). Bias additions, batch normalisation, activations, pooling,
 *   additions and concatenations are elementwise or cheap and count 0, as in keras-flops and
 *   torchinfo; layers with weights that no formula here covers (recurrent layers...) count 0
 *   too and are named in {@link ArchitectureStats.uncounted}.
 * - **FLOPs** = 2 x MACs (one multiply and one add each), the convention of keras-flops.
 * - **Activations**: the elements of every layer's output for one image (the input excluded, as
 *   torchinfo's "forward pass size"); as bytes, float32 (4 bytes each) for a batch of 1.
 * - **Weights**: parameters as Keras counts them (trainable, and non-trainable such as batch
 *   normalisation's moving mean and variance), their bytes in memory (float32: 4 per parameter),
 *   and, for a model folder, the bytes of its weight files on disk.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MODEL_JSON } from './model-io.ts';
import type { ModelMeta } from './model-meta.ts';

type Layer = tf.layers.Layer;
type Node = Layer['inboundNodes'][number];
type Shape = (number | null)[];

/** One row of the table: a layer (inside a nested model: one of its layers). */
export interface LayerStats {
  /** The layer's name; inside a nested model, the nested model's name, `/`, the layer's. */
  readonly name: string;
  /** Keras class name, e.g. `Conv2D`, `DepthwiseConv2D`, `BatchNormalization`. */
  readonly className: string;
  /** 0 for the model's own layers, 1 inside a nested model, and so on. */
  readonly depth: number;
  /** Output shape without the batch dimension, e.g. `[24, 24, 6]` (the first output's). */
  readonly outputShape: readonly number[];
  readonly trainableParams: number;
  readonly nonTrainableParams: number;
  /** Multiply-accumulates for one image (all the layer's calls when it is shared). */
  readonly macs: number;
  /** Output elements for one image (all outputs, all calls). */
  readonly activations: number;
  /** Times the layer is applied in one forward pass (more than 1 for a shared layer). */
  readonly calls: number;
}

/** The figures of a whole model. */
export interface ArchitectureStats {
  /** The model's name (`lenet`, `mobilenet_like`...). */
  readonly name: string;
  /** The (first) input's shape without the batch dimension, e.g. `[28, 28, 1]`. */
  readonly inputShape: readonly number[];
  /** Every layer except input placeholders, in the model's order (nested models flattened). */
  readonly layers: readonly LayerStats[];
  /** Parameters, each shared weight counted once: Keras' "Trainable / Non-trainable params". */
  readonly params: {
    readonly trainable: number;
    readonly nonTrainable: number;
    readonly total: number;
  };
  /** Multiply-accumulates for one image. */
  readonly macs: number;
  /** 2 x {@link macs}. */
  readonly flops: number;
  /** Bytes the weights take in memory (float32 and int32: 4 per parameter). */
  readonly weightBytes: number;
  /** Bytes of every layer output for a batch of 1, float32 (the input excluded). */
  readonly activationBytes: number;
  /** Bytes of one input image, float32. */
  readonly inputBytes: number;
  /** Layers with weights whose MACs no formula here covers; counted as 0. */
  readonly uncounted: readonly string[];
}

/** Layers with weights whose work is elementwise: 0 MACs by convention, not "uncounted". */
const ELEMENTWISE_WITH_WEIGHTS = new Set([
  'BatchNormalization',
  'LayerNormalization',
  'PReLU',
  'Embedding',
]);

const BYTES_PER_DTYPE: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1 };

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** `Shape | Shape[]` (what a node holds) as a list of shapes. */
function shapeList(s: Shape | Shape[]): Shape[] {
  return Array.isArray(s[0]) ? (s as Shape[]) : [s as Shape];
}

/** A shape without its batch dimension, every other dimension known. */
function fixedDims(shape: Shape, layer: string): number[] {
  const dims = shape.slice(1);
  if (dims.some((d) => d === null)) {
    throw new Error(
      `layer "${layer}" has output shape [${shape.join(', ')}]: architecture statistics need a model built for a fixed input size`,
    );
  }
  return dims as number[];
}

function isContainer(layer: Layer): layer is Layer & tf.LayersModel {
  const l = layer as Partial<tf.LayersModel>;
  return Array.isArray(l.layers) && Array.isArray(l.inputs) && Array.isArray(l.outputs);
}

function paramCount(weights: readonly tf.LayerVariable[]): number {
  return weights.reduce((n, w) => n + product(w.shape as number[]), 0);
}

function config(layer: Layer): Readonly<Record<string, unknown>> {
  return layer.getConfig();
}

function kernelSize(layer: Layer, rank: number): number[] {
  const k = config(layer).kernelSize as number | number[];
  return Array.isArray(k) ? k : Array.from({ length: rank }, () => k);
}

/** The channel count of a shape without batch, for the layer's data format. */
function channels(dims: readonly number[], layer: Layer): number {
  const first = config(layer).dataFormat === 'channelsFirst';
  return (first ? dims[0] : dims.at(-1)) ?? 1;
}

/**
 * MACs of one call of `layer`, from its input and output shapes (batch removed), or `undefined`
 * when the layer has weights no formula covers.
 */
function macsOfCall(
  layer: Layer,
  input: readonly number[],
  output: readonly number[],
): number | undefined {
  const out = product(output);
  const kind = layer.getClassName();
  switch (kind) {
    case 'Dense':
      // Applied to every position of a rank > 2 input: `in` MACs per output element.
      return out * (input.at(-1) ?? 0);
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D': {
      const rank = kind === 'Conv1D' ? 1 : kind === 'Conv2D' ? 2 : 3;
      const groups = (config(layer).groups as number | undefined) ?? 1;
      return (out * product(kernelSize(layer, rank)) * channels(input, layer)) / groups;
    }
    case 'DepthwiseConv2D':
      // Output channels are C_in·m, each output element a k_h·k_w window of one channel.
      return out * product(kernelSize(layer, 2));
    case 'SeparableConv2D': {
      const m = (config(layer).depthMultiplier as number | undefined) ?? 1;
      const cIn = channels(input, layer);
      const cOut = channels(output, layer);
      const pixels = out / cOut;
      return pixels * cIn * m * product(kernelSize(layer, 2)) + pixels * cIn * m * cOut;
    }
    case 'Conv2DTranspose':
      // Each input element is scattered through the whole kernel into C_out channels.
      return product(input) * product(kernelSize(layer, 2)) * channels(output, layer);
    default:
      return layer.weights.length === 0 || ELEMENTWISE_WITH_WEIGHTS.has(kind) ? 0 : undefined;
  }
}

/** The nodes of `model`'s own graph (a layer shared with another model has nodes there too). */
function graphNodes(model: tf.LayersModel): Set<Node> {
  return new Set(Object.values(model.nodesByDepth).flat());
}

function collect(
  model: tf.LayersModel,
  prefix: string,
  depth: number,
  multiplier: number,
  rows: LayerStats[],
  uncounted: string[],
): void {
  const own = graphNodes(model);
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const inGraph = layer.inboundNodes.filter((n) => own.has(n));
    const nodes = inGraph.length > 0 ? inGraph : layer.inboundNodes.slice(0, 1);
    const calls = nodes.length * multiplier;
    if (isContainer(layer)) {
      collect(layer, `${prefix}${layer.name}/`, depth + 1, calls, rows, uncounted);
      continue;
    }
    const name = `${prefix}${layer.name}`;
    let macs = 0;
    let activations = 0;
    let outputShape: number[] = [];
    for (const node of nodes) {
      const inputs = shapeList(node.inputShapes).map((s) => fixedDims(s, name));
      const outputs = shapeList(node.outputShapes).map((s) => fixedDims(s, name));
      if (outputShape.length === 0) outputShape = outputs[0] ?? [];
      activations += outputs.reduce((n, s) => n + product(s), 0) * multiplier;
      const m = macsOfCall(layer, inputs[0] ?? [], outputs[0] ?? []);
      if (m === undefined) {
        if (!uncounted.includes(name)) uncounted.push(name);
      } else macs += m * multiplier;
    }
    rows.push({
      name,
      className: layer.getClassName(),
      depth,
      outputShape,
      trainableParams: paramCount(layer.trainableWeights),
      nonTrainableParams: paramCount(layer.nonTrainableWeights),
      macs,
      activations,
      calls,
    });
  }
}

/**
 * The architecture statistics of a model: a row per layer (nested models' layers flattened, with
 * their depth) and the totals, as defined at the top of this module. Pure: reads the model's
 * topology and weight shapes, runs nothing, creates no tensor.
 *
 * @throws {Error} when a layer's output has an unknown dimension other than the batch (a model
 *   built for variable-size inputs): MACs depend on the input size.
 * @example
 * const s = architectureStats(buildLeNet());
 * s.params.total; // 44426
 * s.macs;         // 281640 multiply-accumulates per 28x28 image
 */
export function architectureStats(model: tf.LayersModel): ArchitectureStats {
  const rows: LayerStats[] = [];
  const uncounted: string[] = [];
  collect(model, '', 0, 1, rows, uncounted);
  const trainable = paramCount(model.trainableWeights);
  const nonTrainable = paramCount(model.nonTrainableWeights);
  const macs = rows.reduce((n, r) => n + r.macs, 0);
  const input = model.inputs[0];
  const inputShape = input ? fixedDims(input.shape, input.name) : [];
  const weightBytes = [...model.trainableWeights, ...model.nonTrainableWeights].reduce(
    (n, w) => n + product(w.shape as number[]) * (BYTES_PER_DTYPE[w.dtype] ?? 4),
    0,
  );
  const activations = rows.reduce((n, r) => n + r.activations, 0);
  return {
    name: model.name,
    inputShape,
    layers: rows,
    params: { trainable, nonTrainable, total: trainable + nonTrainable },
    macs,
    flops: 2 * macs,
    weightBytes,
    activationBytes: activations * 4,
    inputBytes: product(inputShape) * 4,
    uncounted,
  };
}

/**
 * Bytes of a model folder's weight files on disk: the shards `model.json`'s weights manifest
 * lists (quantized weights take fewer bytes than {@link ArchitectureStats.weightBytes}).
 *
 * @throws {Error} when `model.json` or a listed shard cannot be read.
 */
export async function weightFileBytes(dir: string): Promise<number> {
  const json = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as {
    weightsManifest?: { paths: string[] }[];
  };
  let bytes = 0;
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) bytes += (await stat(path.join(dir, p))).size;
  }
  return bytes;
}

/** Options of {@link measureLatency}. */
export interface LatencyOptions {
  /** Timed runs of one image; the median is reported. Default 20. */
  readonly batch1Runs?: number;
  /** Untimed runs of one image first (kernel set-up, caches). Default 3. */
  readonly warmupRuns?: number;
  /** Images in the throughput measurement. Default 1,000. */
  readonly throughputBatch?: number;
  /**
   * Largest estimated memory of one `predict` call, bytes (default 256 MiB; the estimate per
   * image is {@link inferenceBytesPerImage}): a larger batch is run in equal chunks (224x224
   * ImageNet models), the figure being then images/s over all of them.
   */
  readonly maxChunkBytes?: number;
}

/** Measured speed of a model on the current backend. */
export interface Latency {
  /** `tf.getBackend()` when measured: `wasm`, `tensorflow`, `cpu`. */
  readonly backend: string;
  /** Milliseconds for one image, batch 1, input to output read back: median of the runs. */
  readonly msPerImage: number;
  readonly batch1Runs: number;
  /** Images per second over {@link throughputImages} images, outputs read back. */
  readonly imagesPerSecond: number;
  readonly throughputImages: number;
  /** Images per `predict` call in the throughput run (the whole batch unless memory-bound). */
  readonly chunk: number;
}

/**
 * Estimated memory of inference for one image, bytes: the input, plus three times the largest
 * layer output (float32). TF.js frees each intermediate tensor once its last consumer has run,
 * so what is alive at once is about a layer's input, its output and a skip connection's tensor.
 */
export function inferenceBytesPerImage(stats: ArchitectureStats): number {
  const largest = stats.layers.reduce(
    (n, l) => Math.max(n, l.calls > 0 ? l.activations / l.calls : 0),
    0,
  );
  return stats.inputBytes + 3 * largest * 4;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Random inputs in [0, 1] for every model input, `n` images each. */
function inputsOf(model: tf.LayersModel, n: number): tf.Tensor[] {
  return model.inputs.map((i) => tf.randomUniform([n, ...fixedDims(i.shape, i.name)]));
}

/** Runs `model` on `x` and waits for every output to be read back; frees the outputs. */
async function runOnce(model: tf.LayersModel, x: tf.Tensor[], batchSize: number): Promise<void> {
  const y = model.predict(x.length === 1 ? x[0]! : x, { batchSize });
  const outputs = Array.isArray(y) ? y : [y];
  try {
    await Promise.all(outputs.map((o) => o.data()));
  } finally {
    tf.dispose(outputs);
  }
}

/**
 * Measures a model's inference speed on the current TF.js backend (`tf.getBackend()`) on random
 * inputs (speed does not depend on the content): milliseconds per image at batch 1, the median
 * of `batch1Runs` runs after `warmupRuns` untimed ones, and images per second over a batch of
 * `throughputBatch` images, each time until the outputs are read back (`data()`), as a user
 * waits for them. Frees every tensor it creates (`tf.memory().numTensors` is unchanged).
 *
 * The figures are wall-clock time on a machine doing other work too; on the wasm backend one
 * model runs on one thread.
 *
 * @throws {Error} when an input has an unknown dimension other than the batch.
 * @example
 * const { msPerImage, imagesPerSecond } = await measureLatency(model, { batch1Runs: 50 });
 */
export async function measureLatency(
  model: tf.LayersModel,
  options: LatencyOptions = {},
): Promise<Latency> {
  const runs = Math.max(1, options.batch1Runs ?? 20);
  const batch = Math.max(1, options.throughputBatch ?? 1000);
  const perImage = inferenceBytesPerImage(architectureStats(model));
  const budget = options.maxChunkBytes ?? 256 * 2 ** 20;
  const chunk = Math.max(1, Math.min(batch, Math.floor(budget / Math.max(1, perImage))));

  const one = inputsOf(model, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < (options.warmupRuns ?? 3); i++) await runOnce(model, one, 1);
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await runOnce(model, one, 1);
      times.push(performance.now() - t0);
    }
  } finally {
    tf.dispose(one);
  }

  const full = inputsOf(model, chunk);
  const rest = batch % chunk;
  const tail = rest > 0 ? full.map((x) => x.slice(0, rest)) : [];
  let seconds: number;
  try {
    const t0 = performance.now();
    for (let done = 0; done + chunk <= batch; done += chunk) await runOnce(model, full, chunk);
    if (rest > 0) await runOnce(model, tail, rest);
    seconds = (performance.now() - t0) / 1000;
  } finally {
    tf.dispose([...full, ...tail]);
  }
  return {
    backend: tf.getBackend(),
    msPerImage: median(times),
    batch1Runs: runs,
    imagesPerSecond: batch / seconds,
    throughputImages: batch,
    chunk,
  };
}

/** Everything `arch` and `compare` report about an installed model. */
export interface ModelProfile {
  readonly meta: ModelMeta;
  readonly stats: ArchitectureStats;
  readonly latency: Latency;
  /** Bytes of the weight files on disk ({@link weightFileBytes}). */
  readonly weightFileBytes: number;
}

/**
 * The statistics, the weight files' size and the measured speed of a loaded model.
 * @throws {Error} as {@link architectureStats}, {@link measureLatency} and {@link weightFileBytes}.
 */
export async function profileModel(
  loaded: { readonly meta: ModelMeta; readonly model: tf.LayersModel; readonly dir: string },
  options: LatencyOptions = {},
): Promise<ModelProfile> {
  return {
    meta: loaded.meta,
    stats: architectureStats(loaded.model),
    weightFileBytes: await weightFileBytes(loaded.dir),
    latency: await measureLatency(loaded.model, options),
  };
}
