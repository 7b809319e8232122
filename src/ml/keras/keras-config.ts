/**
 * Keras model configurations to and from a {@link KerasGraph}:
 * - {@link parseModelConfig} reads a Keras 3 `config.json`, a Keras 2 `model_config` or TF.js
 *   `model.toJSON()` (Sequential or Functional);
 * - {@link toKeras2Config} writes the Keras 2 / TF.js dialect (`tf.models.modelFromJSON` and
 *   `tf.keras.models.model_from_json` read it);
 * - {@link toKeras3Config} writes the Keras 3 dialect (`keras.saving.deserialize_keras_object`
 *   reads it: `module`/`class_name`/`config`/`registered_name`, inbound nodes as `args` of
 *   `__keras_tensor__` objects with a `keras_history`).
 *
 * Only the settings that decide a layer's output are carried over; initializers, regularizers and
 * constraints are dropped (the weights are loaded from the file, and a checked model is not
 * trained further).
 */
import { UserError } from '../../errors.ts';
import {
  corruptConfig,
  declaredInputShape,
  normalizeLayerConfig,
  supportedClass,
  type GraphLayer,
  type KerasGraph,
  type LayerSettings,
  type TensorRef,
} from './keras-graph.ts';
import { traceShapes } from './keras-shapes.ts';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tensorRef(v: unknown): TensorRef | null {
  if (Array.isArray(v) && typeof v[0] === 'string') {
    return { layer: v[0], node: Number(v[1] ?? 0), tensor: Number(v[2] ?? 0) };
  }
  return null;
}

/** `[[name, 0, 0], ...]`, or Keras 3's `[name, 0, 0]` for a single tensor. */
function tensorRefs(v: unknown, what: string): TensorRef[] {
  const single = tensorRef(v);
  if (single) return [single];
  if (!Array.isArray(v)) throw corruptConfig(`${what} missing`);
  return v.map((x) => {
    const r = tensorRef(x);
    if (!r) throw corruptConfig(`${what} malformed`);
    return r;
  });
}

/** Every `keras_history` in a Keras 3 node's `args`, in order (lists of tensors included). */
function kerasHistories(v: unknown, out: TensorRef[]): void {
  if (Array.isArray(v)) {
    for (const x of v) kerasHistories(x, out);
  } else if (isObject(v)) {
    const config = v.config;
    if (v.class_name === '__keras_tensor__' && isObject(config)) {
      const r = tensorRef(config.keras_history);
      if (!r) throw corruptConfig('keras_history malformed');
      out.push(r);
    }
  }
}

function inboundOf(entry: Json, name: string): TensorRef[] {
  const nodes = entry.inbound_nodes;
  if (nodes === undefined || nodes === null) return [];
  if (!Array.isArray(nodes)) throw corruptConfig(`layer "${name}": inbound_nodes`);
  if (nodes.length === 0) return [];
  if (nodes.length > 1) {
    throw new UserError(
      'keras.unsupported_layer',
      `layer "${name}" is applied ${nodes.length} times (a shared layer); each layer may be used once`,
      { layer: name, className: String(entry.class_name), supported: '' },
    );
  }
  const node: unknown = nodes[0];
  const refs: TensorRef[] = [];
  if (isObject(node)) {
    // Keras 3: {args: [...], kwargs: {...}}
    kerasHistories(node.args, refs);
  } else if (Array.isArray(node)) {
    // Keras 2: [[name, node, tensor, kwargs], ...]
    for (const t of node) {
      const r = tensorRef(t);
      if (!r) throw corruptConfig(`layer "${name}": inbound node malformed`);
      refs.push(r);
    }
  }
  return refs;
}

function layerName(entry: Json): string {
  const config = isObject(entry.config) ? entry.config : {};
  const name = entry.name ?? config.name;
  if (typeof name !== 'string' || name === '') throw corruptConfig('a layer has no name');
  return name;
}

function parseLayer(entry: unknown, inbound: TensorRef[] | null): GraphLayer {
  if (!isObject(entry)) throw corruptConfig('a layer entry is not an object');
  const name = layerName(entry);
  const className = supportedClass(entry, name);
  const config = isObject(entry.config) ? entry.config : {};
  return {
    className,
    name,
    settings: normalizeLayerConfig(className, config, name),
    inbound: inbound ?? inboundOf(entry, name),
  };
}

function sequentialGraph(name: string, entries: unknown[], buildShape: unknown): KerasGraph {
  const layers: GraphLayer[] = [];
  let previous: TensorRef | null = null;
  for (const entry of entries) {
    if (!isObject(entry)) throw corruptConfig('a layer entry is not an object');
    const entryName = layerName(entry);
    if (previous === null && entry.class_name !== 'InputLayer') {
      // Keras 2 writes the input shape on the first layer; Keras 3 may write only build_input_shape.
      const config = isObject(entry.config) ? entry.config : {};
      const shape =
        declaredInputShape(config, entryName) ??
        (buildShape ? declaredInputShape({ batch_input_shape: buildShape }, entryName) : undefined);
      if (!shape) {
        throw new UserError(
          'keras.unknown_input_size',
          'the Sequential model has no input shape (it was saved before being built)',
          { layer: entryName },
        );
      }
      const input = `${name}_input`;
      layers.push({ className: 'InputLayer', name: input, settings: { shape }, inbound: [] });
      previous = { layer: input, node: 0, tensor: 0 };
    }
    const layer = parseLayer(entry, previous ? [previous] : []);
    layers.push(layer);
    previous = { layer: layer.name, node: 0, tensor: 0 };
  }
  const first = layers[0];
  if (!first || !previous) throw corruptConfig('the model has no layers');
  return {
    name,
    style: 'sequential',
    layers,
    inputs: [{ layer: first.name, node: 0, tensor: 0 }],
    outputs: [previous],
  };
}

/**
 * Reads a Keras model configuration.
 *
 * @param json the parsed `config.json` (Keras 3) or `model_config` attribute (Keras 2), or TF.js
 *   `model.toJSON(null, false)`: `{class_name: 'Sequential' | 'Functional' | 'Model', config}`.
 * @returns the layer graph; a Sequential model gets an InputLayer when its file has none.
 * @throws {UserError} `keras.subclassed` (a subclassed model: its `call` is Python code),
 *   `keras.unsupported_layer` / `keras.channels_first` naming the first offending layer,
 *   `keras.unknown_input_size`, `keras.corrupt`.
 */
export function parseModelConfig(json: unknown): KerasGraph {
  if (!isObject(json)) throw corruptConfig('not a JSON object');
  const className = json.class_name;
  const config = json.config;
  if (className === 'Sequential') {
    // Keras 2.2 wrote the layer list as the config itself.
    const entries = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
    if (!Array.isArray(entries)) throw corruptConfig('Sequential without layers');
    const name = isObject(config) && typeof config.name === 'string' ? config.name : 'sequential';
    return sequentialGraph(name, entries, isObject(config) ? config.build_input_shape : undefined);
  }
  if (className !== 'Functional' && className !== 'Model') {
    throw new UserError(
      'keras.subclassed',
      `the model is a subclassed ${String(className)}, whose call() is Python code; build it with keras.Input and the functional API`,
      { className: String(className) },
    );
  }
  if (!isObject(config) || !Array.isArray(config.layers)) {
    throw corruptConfig('Functional without layers');
  }
  const layers = config.layers.map((entry) => parseLayer(entry, null));
  const names = new Set<string>();
  for (const l of layers) {
    if (names.has(l.name)) throw corruptConfig(`two layers are named "${l.name}"`);
    for (const r of l.inbound) {
      if (!names.has(r.layer))
        throw corruptConfig(`layer "${l.name}" reads "${r.layer}" before it exists`);
    }
    names.add(l.name);
  }
  const inputs = tensorRefs(config.input_layers, 'input_layers');
  const outputs = tensorRefs(config.output_layers, 'output_layers');
  for (const r of [...inputs, ...outputs]) {
    if (!names.has(r.layer)) throw corruptConfig(`unknown layer "${r.layer}" in inputs/outputs`);
  }
  return {
    name: typeof config.name === 'string' ? config.name : 'model',
    style: 'functional',
    layers,
    inputs,
    outputs,
  };
}

/** A layer's settings in the Keras 2 / TF.js spelling (snake_case keys). */
function keras2Settings(l: GraphLayer): Json {
  const s: LayerSettings = l.settings;
  const common = { name: l.name, trainable: true, dtype: 'float32' };
  const conv = {
    kernel_size: s.kernel_size,
    strides: s.strides,
    padding: s.padding,
    data_format: 'channels_last',
    dilation_rate: s.dilation_rate,
    activation: s.activation,
    use_bias: s.use_bias,
  };
  switch (l.className) {
    case 'InputLayer':
      return {
        batch_input_shape: [null, ...(s.shape ?? [])],
        dtype: 'float32',
        sparse: false,
        name: l.name,
      };
    case 'Conv2D':
      return { ...common, filters: s.filters, ...conv };
    case 'DepthwiseConv2D':
      return { ...common, depth_multiplier: s.depth_multiplier, ...conv };
    case 'SeparableConv2D':
      return { ...common, filters: s.filters, depth_multiplier: s.depth_multiplier, ...conv };
    case 'MaxPooling2D':
    case 'AveragePooling2D':
      return {
        ...common,
        pool_size: s.pool_size,
        strides: s.strides,
        padding: s.padding,
        data_format: 'channels_last',
      };
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
    case 'Flatten':
      return { ...common, data_format: 'channels_last' };
    case 'Dense':
      return { ...common, units: s.units, activation: s.activation, use_bias: s.use_bias };
    case 'Dropout':
      return { ...common, rate: s.rate };
    case 'Reshape':
      return { ...common, target_shape: s.target_shape };
    case 'BatchNormalization':
      return {
        ...common,
        axis: s.axis,
        momentum: s.momentum,
        epsilon: s.epsilon,
        center: s.center,
        scale: s.scale,
      };
    case 'Activation':
      return { ...common, activation: s.activation };
    case 'ReLU':
      return { ...common, max_value: s.max_value ?? null };
    case 'Softmax':
      return { ...common, axis: s.axis ?? -1 };
    case 'Add':
      return common;
    case 'Concatenate':
      return { ...common, axis: s.axis };
    case 'ZeroPadding2D':
      return { ...common, padding: s.zero_padding, data_format: 'channels_last' };
    case 'Rescaling':
      return { ...common, scale: s.factor, offset: s.offset };
  }
}

/**
 * The graph as a Keras 2 functional configuration (the `model_config` attribute of a Keras 2
 * `.h5`), which is also what `tf.models.modelFromJSON` reads.
 *
 * @param className `Functional` for Keras 2.4+, `Model` for TF.js and older Keras 2.
 */
export function toKeras2Config(
  graph: KerasGraph,
  className: 'Functional' | 'Model' = 'Functional',
): Json {
  const ref = (r: TensorRef): [string, number, number] => [r.layer, r.node, r.tensor];
  return {
    class_name: className,
    config: {
      name: graph.name,
      layers: graph.layers.map((l) => ({
        class_name: l.className,
        config: keras2Settings(l),
        name: l.name,
        inbound_nodes: l.inbound.length ? [l.inbound.map((r) => [...ref(r), {}])] : [],
      })),
      input_layers: graph.inputs.map(ref),
      output_layers: graph.outputs.map(ref),
    },
  };
}

/** A layer's settings in the Keras 3 spelling. */
function keras3Settings(l: GraphLayer): Json {
  const k2 = keras2Settings(l);
  if (l.className === 'InputLayer') {
    return { batch_shape: k2.batch_input_shape, dtype: 'float32', sparse: false, name: l.name };
  }
  if (l.className === 'GlobalAveragePooling2D' || l.className === 'GlobalMaxPooling2D') {
    return { ...k2, keepdims: false };
  }
  if (l.className === 'ReLU') return { ...k2, negative_slope: 0, threshold: 0 };
  if (l.className === 'Conv2D') return { ...k2, groups: 1 };
  return k2;
}

/**
 * The graph as a Keras 3 `config.json` (functional), as `keras.saving.serialize_keras_object`
 * writes it; every tensor carries its shape.
 * @throws {UserError} `keras.corrupt` when the graph's own shapes are impossible.
 */
export function toKeras3Config(graph: KerasGraph): Json {
  const trace = traceShapes(graph);
  if (trace.failure) throw corruptConfig(`layer "${trace.failure.layer}" has an impossible shape`);
  const tensor = (r: TensorRef): Json => ({
    class_name: '__keras_tensor__',
    config: {
      shape: [null, ...(trace.shapes.get(r.layer) ?? [])],
      dtype: 'float32',
      keras_history: [r.layer, r.node, r.tensor],
    },
  });
  const merge = (c: string): boolean => c === 'Add' || c === 'Concatenate';
  const ref = (r: TensorRef): [string, number, number] => [r.layer, r.node, r.tensor];
  return {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: {
      name: graph.name,
      trainable: true,
      layers: graph.layers.map((l) => ({
        module: 'keras.layers',
        class_name: l.className,
        config: keras3Settings(l),
        registered_name: null,
        ...(l.className === 'InputLayer'
          ? {}
          : {
              build_config: {
                input_shape: merge(l.className)
                  ? l.inbound.map((r) => [null, ...(trace.shapes.get(r.layer) ?? [])])
                  : [null, ...(trace.shapes.get(l.inbound[0]?.layer ?? '') ?? [])],
              },
            }),
        name: l.name,
        inbound_nodes: l.inbound.length
          ? [
              {
                args: merge(l.className) ? [l.inbound.map(tensor)] : l.inbound.map(tensor),
                kwargs: {},
              },
            ]
          : [],
      })),
      input_layers: graph.inputs.map(ref),
      output_layers: graph.outputs.map(ref),
    },
    registered_name: 'Functional',
  };
}
