/**
 * Reads a Keras model file into a TF.js layers model, in Node, without Python:
 * - Keras 3 `.keras`: a zip of `config.json` (the model), `metadata.json` (`keras_version`) and
 *   `model.weights.h5`, whose variables sit at `layers/<snake_case(class)>[_k]/vars/<i>` (the k-th
 *   layer of a class in the model's order; keras/src/saving/saving_lib.py
 *   `_save_container_state`), optimizer variables beside them (ignored);
 * - Keras 2 full-model HDF5 `.h5` (also what Keras 3 writes for `model.save('x.h5')`): the
 *   `model_config` attribute, and the `model_weights` group with `layer_names` and per layer
 *   `weight_names` naming its datasets (`model_weights/conv1/conv1/kernel:0`;
 *   keras/src/legacy/saving/legacy_h5_format.py).
 *
 * The configuration is translated (see `keras-config.ts`); each weight is assigned to its layer
 * and variable with its shape checked. Nothing in the file is executed.
 */
import * as tf from '@tensorflow/tfjs';
import { unzipSync } from 'fflate';
import { UserError } from '../../errors.ts';
import { parseModelConfig, toKeras2Config } from './keras-config.ts';
import type { GraphLayer, KerasGraph } from './keras-graph.ts';
import {
  datasetAt,
  groupAt,
  readArray,
  stringAttribute,
  stringListAttribute,
  withH5Bytes,
  type H5Group,
  type NamedArray,
} from './h5-file.ts';

/** Size limits against oversized files and zip bombs. */
export interface KerasLimits {
  /** Largest file accepted, bytes (default 300 MiB: AlexNet with Adam's state is ~260 MB). */
  readonly maxFileBytes: number;
  /** Largest total of the unzipped entries read from a `.keras`, bytes (default 600 MiB). */
  readonly maxUnzippedBytes: number;
  /** Largest `config.json` / `metadata.json`, bytes (default 8 MiB). */
  readonly maxConfigBytes: number;
  /** Most entries a `.keras` zip may list (default 256). */
  readonly maxEntries: number;
}

/** The default {@link KerasLimits}. */
export const DEFAULT_KERAS_LIMITS: KerasLimits = {
  maxFileBytes: 300 * 2 ** 20,
  maxUnzippedBytes: 600 * 2 ** 20,
  maxConfigBytes: 8 * 2 ** 20,
  maxEntries: 256,
};

/** Which container a model came in. */
export type KerasFormat = 'keras' | 'h5';

/** What a model file holds, besides the model. */
export interface KerasFileInfo {
  readonly format: KerasFormat;
  /** `keras_version` from `metadata.json` or the `.h5` attributes, when the file says. */
  readonly kerasVersion: string | null;
  /** The layer graph as saved (including whether it was Sequential). */
  readonly graph: KerasGraph;
}

/** A model read from a Keras file. */
export interface KerasModel extends KerasFileInfo {
  /** Ready to predict: `[batch, ...inputShape]` float32 in, the model's outputs out. Dispose it. */
  readonly model: tf.LayersModel;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, magic: readonly number[], at = 0): boolean {
  return magic.every((b, i) => bytes[at + i] === b);
}

/** The container of `bytes` from its first bytes (HDF5 may start after a user block). */
export function sniffKerasFormat(bytes: Uint8Array): KerasFormat | null {
  if (startsWith(bytes, ZIP_MAGIC)) return 'keras';
  for (const at of [0, 512, 1024, 2048]) if (startsWith(bytes, HDF5_MAGIC, at)) return 'h5';
  return null;
}

function corrupt(detail: string): UserError {
  return new UserError('keras.corrupt', `the model file is damaged: ${detail}`, { detail });
}

function weightsOnly(): UserError {
  return new UserError(
    'keras.weights_only',
    "the file holds only weights, not the model; save the whole model: model.save('name.keras')",
  );
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw corrupt(`${what} is not JSON`);
  }
}

/** `Conv2D` → `conv2d`, `BatchNormalization` → `batch_normalization` (keras.src.utils.naming). */
export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** Where each layer's variables are in a Keras 3 weights file: `layers/conv2d_1`, ... */
export function keras3LayerPaths(graph: KerasGraph): Map<string, string> {
  const used = new Map<string, number>();
  const paths = new Map<string, string>();
  for (const l of graph.layers) {
    const base = toSnakeCase(l.className);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    paths.set(l.name, `layers/${n === undefined ? base : `${base}_${n + 1}`}`);
  }
  return paths;
}

type WeightSource = (layer: GraphLayer) => NamedArray[];

function keras3Source(root: H5Group, graph: KerasGraph): WeightSource {
  const paths = keras3LayerPaths(graph);
  const checkpoint = groupAt(root, '_layer_checkpoint_dependencies');
  return (layer) => {
    const candidates = [
      paths.get(layer.name) ?? '',
      `layers/${toSnakeCase(layer.name)}`,
      `layers/${layer.name}`,
    ];
    if (checkpoint) candidates.push(`_layer_checkpoint_dependencies/${layer.name}`);
    for (const p of candidates) {
      const vars = groupAt(root, `${p}/vars`);
      if (!vars) continue;
      const keys = vars.keys().filter((k) => /^\d+$/.test(k));
      if (keys.length === 0) continue;
      return keys
        .sort((a, b) => Number(a) - Number(b))
        .map((k) => {
          const ds = datasetAt(vars, k);
          if (!ds) throw corrupt(`${p}/vars/${k} is not a dataset`);
          return readArray(ds, `${p}/vars/${k}`);
        });
    }
    return [];
  };
}

function keras2Source(weightsGroup: H5Group): WeightSource {
  return (layer) => {
    const g = groupAt(weightsGroup, layer.name);
    if (!g) return [];
    return stringListAttribute(g, 'weight_names').map((w) => {
      const ds = datasetAt(g, w);
      if (!ds) throw corrupt(`weight ${layer.name}/${w} is missing`);
      return readArray(ds, w);
    });
  };
}

function shapeText(shape: readonly (number | null)[]): string {
  return shape.join('×');
}

/**
 * Builds the TF.js model of `graph` and assigns every layer's weights from `source`, checking
 * their number and shapes.
 * @throws {UserError} `keras.weights_mismatch` naming the layer, and the shapes expected and found.
 */
async function buildModel(graph: KerasGraph, source: WeightSource): Promise<tf.LayersModel> {
  const topology: unknown = toKeras2Config(graph, 'Model');
  const model = await tf.models.modelFromJSON(
    topology as Parameters<typeof tf.models.modelFromJSON>[0],
  );
  try {
    for (const l of graph.layers) {
      const layer = model.getLayer(l.name);
      const expected = layer.weights;
      const found = source(l);
      if (found.length !== expected.length) {
        throw new UserError(
          'keras.weights_mismatch',
          `layer "${l.name}": expected ${expected.length} weight arrays, the file has ${found.length}`,
          { layer: l.name, expected: String(expected.length), found: String(found.length) },
        );
      }
      const tensors: tf.Tensor[] = [];
      try {
        for (const [i, w] of found.entries()) {
          const want = expected[i]!.shape;
          const same = want.length === w.shape.length && want.every((d, k) => d === w.shape[k]);
          if (!same || w.data.length !== w.shape.reduce((a, b) => a * b, 1)) {
            throw new UserError(
              'keras.weights_mismatch',
              `layer "${l.name}": weight ${expected[i]!.originalName} should be ${shapeText(want)}, the file has ${shapeText(w.shape)}`,
              { layer: l.name, expected: shapeText(want), found: shapeText(w.shape) },
            );
          }
          tensors.push(tf.tensor(w.data, [...w.shape], 'float32'));
        }
        if (tensors.length) layer.setWeights(tensors);
      } finally {
        tf.dispose(tensors);
      }
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function unzipKeras(
  bytes: Uint8Array,
  limits: KerasLimits,
  withWeights = true,
): Record<string, Uint8Array> {
  let total = 0;
  let entries = 0;
  const wanted = new Set(['config.json', 'metadata.json']);
  if (withWeights) for (const w of ['model.weights.h5', 'model.weights.npz']) wanted.add(w);
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        entries += 1;
        if (entries > limits.maxEntries)
          throw new UserError('keras.too_large', 'too many entries in the zip', {
            limit: String(limits.maxEntries),
          });
        if (!wanted.has(f.name)) return false;
        const cap = f.name.endsWith('.json') ? limits.maxConfigBytes : limits.maxUnzippedBytes;
        total += f.originalSize;
        if (f.originalSize > cap || total > limits.maxUnzippedBytes) {
          throw new UserError('keras.too_large', `${f.name} unzips to ${f.originalSize} bytes`, {
            limit: `${Math.round(limits.maxUnzippedBytes / 2 ** 20)} MB`,
          });
        }
        return true;
      },
    });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw corrupt(`not a readable zip (${(e as Error).message})`);
  }
  // fflate sizes its output by the declared size; a lying header cannot make it larger.
  return files;
}

/**
 * Reads a Keras 3 `.keras` or Keras 2 `.h5` model file.
 *
 * @param bytes the file's contents.
 * @param limits size limits (see {@link DEFAULT_KERAS_LIMITS}).
 * @returns the model (the caller disposes it), its graph, format and Keras version.
 * @throws {UserError} `keras.too_large`; `keras.unsupported_format` (not a zip or HDF5 file);
 *   `keras.weights_only` (a `.weights.h5` or `save_weights` file: "save the whole model");
 *   `keras.subclassed`, `keras.unsupported_layer`, `keras.channels_first`,
 *   `keras.unknown_input_size` (from the configuration); `keras.weights_mismatch`;
 *   `keras.corrupt`.
 *
 * @example
 * const { model, graph } = await readKerasModel(await readFile('alexnet.keras'));
 * const probs = model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor2D; // [1, 10]
 */
export async function readKerasModel(
  bytes: Uint8Array,
  limits: KerasLimits = DEFAULT_KERAS_LIMITS,
): Promise<KerasModel> {
  checkSize(bytes, limits);
  const format = sniff(bytes);
  if (format === 'keras') {
    const files = unzipKeras(bytes, limits);
    const info = archiveInfo(files);
    const weights = files['model.weights.h5'];
    if (!weights) {
      throw corrupt(
        files['model.weights.npz']
          ? 'npz weights are not supported'
          : 'model.weights.h5 is missing',
      );
    }
    const model = await withH5Bytes(weights, (root) =>
      buildModel(info.graph, keras3Source(root, info.graph)),
    ).catch(rethrowH5);
    return { ...info, model };
  }
  return withH5Bytes(bytes, async (root) => {
    const info = h5Info(root);
    const weightsGroup = groupAt(root, 'model_weights');
    if (!weightsGroup) throw corrupt('the .h5 file has no model_weights group');
    return { ...info, model: await buildModel(info.graph, keras2Source(weightsGroup)) };
  }).catch(rethrowH5);
}

/**
 * Reads only the model's configuration and version from a Keras file (no weights, no TF.js model):
 * enough for the structural checks, and fast for large models.
 * @throws {UserError} as {@link readKerasModel}, except `keras.weights_mismatch`.
 */
export async function readKerasGraph(
  bytes: Uint8Array,
  limits: KerasLimits = DEFAULT_KERAS_LIMITS,
): Promise<KerasFileInfo> {
  checkSize(bytes, limits);
  if (sniff(bytes) === 'keras') {
    const configOnly = { ...limits, maxUnzippedBytes: limits.maxConfigBytes * 2 };
    return archiveInfo(unzipKeras(bytes, configOnly, false));
  }
  return withH5Bytes(bytes, h5Info).catch(rethrowH5);
}

/** The graph and Keras version of an unzipped `.keras` archive. */
function archiveInfo(files: Record<string, Uint8Array>): KerasFileInfo {
  const config = files['config.json'];
  if (!config) throw corrupt('config.json is missing from the .keras archive');
  const meta = files['metadata.json'] ? parseJson(files['metadata.json'], 'metadata.json') : {};
  const version = (meta as { keras_version?: unknown }).keras_version;
  return {
    format: 'keras',
    kerasVersion: typeof version === 'string' ? version : null,
    graph: parseModelConfig(parseJson(config, 'config.json')),
  };
}

/** The graph and Keras version of an open Keras 2 `.h5` file. */
function h5Info(root: H5Group): KerasFileInfo {
  const graph = parseModelConfig(h5Config(root));
  const weightsGroup = groupAt(root, 'model_weights');
  const version =
    stringAttribute(root, 'keras_version') ??
    (weightsGroup ? stringAttribute(weightsGroup, 'keras_version') : undefined);
  return { format: 'h5', kerasVersion: version ?? null, graph };
}

function h5Config(root: H5Group): unknown {
  const configText = stringAttribute(root, 'model_config');
  if (configText === undefined) {
    if (root.attrs.layer_names || groupAt(root, 'layers') || groupAt(root, 'vars'))
      throw weightsOnly();
    throw corrupt('the .h5 file has no model_config');
  }
  try {
    return JSON.parse(configText);
  } catch {
    throw corrupt('model_config is not JSON');
  }
}

function checkSize(bytes: Uint8Array, limits: KerasLimits): void {
  if (bytes.byteLength > limits.maxFileBytes) {
    throw new UserError('keras.too_large', `the file has ${bytes.byteLength} bytes`, {
      limit: `${Math.round(limits.maxFileBytes / 2 ** 20)} MB`,
    });
  }
}

function sniff(bytes: Uint8Array): KerasFormat {
  const format = sniffKerasFormat(bytes);
  if (format === null) {
    throw new UserError(
      'keras.unsupported_format',
      'not a Keras model file (.keras zip or .h5 HDF5)',
    );
  }
  return format;
}

function rethrowH5(e: unknown): never {
  if (e instanceof UserError) throw e;
  throw corrupt(`HDF5 could not be read (${(e as Error).message})`);
}
