/**
 * Writes a TF.js layers model as a Keras model file: the Keras 3 `.keras` zip (`metadata.json`,
 * `config.json`, `model.weights.h5` with `layers/<snake_case(class)>[_k]/vars/<i>`), which
 * `keras.saving.load_model` reads, or the Keras 2 full-model `.h5` (`model_config`,
 * `model_weights/<layer>/<layer>/<var>:0`), which `tf.keras.models.load_model` reads. The
 * inverse of `read-keras.ts`; the course's models and the tests' fixtures go through it.
 */
import type * as tf from '@tensorflow/tfjs';
import { zipSync, strToU8 } from 'fflate';
import { parseModelConfig, toKeras2Config, toKeras3Config } from './keras-config.ts';
import type { KerasGraph } from './keras-graph.ts';
import { buildH5Bytes, ensureGroup, writeArray, type H5Group } from './h5-file.ts';
import { keras3LayerPaths, type KerasFormat } from './read-keras.ts';

/** The Keras versions the written files declare. */
export const WRITTEN_KERAS_VERSION = { keras: '3.6.0', h5: '2.15.0' } as const;

/** The graph of a TF.js model (its `toJSON()` is Keras 2 style). */
export function graphOfModel(model: tf.LayersModel): KerasGraph {
  return parseModelConfig(model.toJSON(null, false));
}

interface LayerWeights {
  readonly name: string;
  readonly arrays: {
    readonly varName: string;
    readonly shape: number[];
    readonly data: Float32Array;
  }[];
}

function layerWeights(model: tf.LayersModel, graph: KerasGraph): LayerWeights[] {
  const own = new Map(model.layers.map((l) => [l.name, l]));
  return graph.layers.map((l) => {
    // A Sequential model's graph may name an input layer TF.js keeps apart: it has no weights.
    const layer = own.get(l.name);
    const values = layer ? layer.getWeights() : [];
    const arrays = values.map((t, i) => {
      const original = layer?.weights[i]?.originalName ?? `w${i}`;
      const varName = original.slice(original.lastIndexOf('/') + 1);
      return { varName, shape: t.shape, data: t.dataSync() as Float32Array };
    });
    // getWeights returns the layer's own variables: read, never disposed here.
    return { name: l.name, arrays };
  });
}

/**
 * The model as file bytes.
 *
 * @param model any model made of the supported layers (see `keras-graph.ts`).
 * @param format `keras` (Keras 3) or `h5` (Keras 2).
 * @throws {UserError} `keras.unsupported_layer` when the model has a layer Keras files here
 *   cannot hold.
 *
 * @example
 * await writeFile('alexnet.keras', await writeKerasModel(model, 'keras'));
 */
export async function writeKerasModel(
  model: tf.LayersModel,
  format: KerasFormat,
): Promise<Uint8Array> {
  const graph = graphOfModel(model);
  const weights = layerWeights(model, graph);
  if (format === 'h5') {
    const config = JSON.stringify(toKeras2Config(graph, 'Functional'));
    return buildH5Bytes((root) => {
      root.create_attribute('keras_version', WRITTEN_KERAS_VERSION.h5);
      root.create_attribute('backend', 'tensorflow');
      root.create_attribute('model_config', config);
      const mw = ensureGroup(root, 'model_weights');
      mw.create_attribute(
        'layer_names',
        weights.map((w) => w.name),
      );
      mw.create_attribute('backend', 'tensorflow');
      mw.create_attribute('keras_version', WRITTEN_KERAS_VERSION.h5);
      for (const w of weights) {
        const g = ensureGroup(mw, w.name);
        if (w.arrays.length === 0) continue;
        const names = w.arrays.map((a) => `${w.name}/${a.varName}:0`);
        g.create_attribute('weight_names', names);
        w.arrays.forEach((a, i) => {
          const full = names[i]!;
          const slash = full.lastIndexOf('/');
          writeArray(ensureGroup(g, full.slice(0, slash)), full.slice(slash + 1), a.shape, a.data);
        });
      }
    });
  }
  const config = JSON.stringify(toKeras3Config(graph));
  const paths = keras3LayerPaths(graph);
  const h5 = await buildH5Bytes((root: H5Group) => {
    ensureGroup(root, 'vars');
    for (const w of weights) {
      const vars = ensureGroup(root, `${paths.get(w.name) ?? `layers/${w.name}`}/vars`);
      w.arrays.forEach((a, i) => writeArray(vars, String(i), a.shape, a.data));
    }
  });
  const metadata = JSON.stringify({
    keras_version: WRITTEN_KERAS_VERSION.keras,
    date_saved: new Date().toISOString().slice(0, 19).replace('T', '@'),
  });
  return zipSync(
    {
      'metadata.json': strToU8(metadata),
      'config.json': strToU8(config),
      'model.weights.h5': [h5, { level: 0 }],
    },
    { level: 6, mtime: new Date('2026-01-01T00:00:00Z') },
  );
}
