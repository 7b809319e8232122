/**
 * The layer graph of a Keras model as plain data, independent of the Keras version that saved it:
 * what `config.json` (Keras 3 `.keras`) or the `model_config` attribute (Keras 2 `.h5`) describe,
 * reduced to the layers this course uses and the settings that change a layer's output. Readers
 * turn both Keras dialects (and TF.js `model.toJSON()`, which is Keras 2 style) into a
 * {@link KerasGraph}; writers turn a graph into a TF.js model, a Keras 3 `config.json` or a Keras 2
 * `model_config` (see `keras-config.ts`).
 *
 * Nothing in a configuration is ever executed: a `Lambda` layer's Python code or a custom class is
 * refused by name, never looked up.
 *
 * Sources: keras/src/saving/serialization_lib.py and keras/src/models/functional.py (Keras 3:
 * `inbound_nodes` as `{args, kwargs}` with `__keras_tensor__` objects whose `keras_history` is
 * `[layer, node_index, tensor_index]`), tf-keras/src/engine/functional.py (Keras 2:
 * `inbound_nodes` as `[[[layer, node_index, tensor_index, kwargs], ...]]`).
 */
import { UserError } from '../../errors.ts';

/** The Keras layer classes that can be read, written and checked, in the order messages list them. */
export const SUPPORTED_LAYERS = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'Dense',
  'Dropout',
  'Flatten',
  'Reshape',
  'BatchNormalization',
  'Activation',
  'ReLU',
  'Softmax',
  'Add',
  'Concatenate',
  'ZeroPadding2D',
  'Rescaling',
] as const;

/** One of {@link SUPPORTED_LAYERS}. */
export type SupportedLayer = (typeof SUPPORTED_LAYERS)[number];

/** Activation functions a layer may name (Keras spelling); `silu` is read as `swish`. */
export const SUPPORTED_ACTIVATIONS = [
  'linear',
  'relu',
  'relu6',
  'sigmoid',
  'tanh',
  'softmax',
  'elu',
  'selu',
  'softplus',
  'softsign',
  'swish',
  'gelu',
  'mish',
] as const;

/** An output of a layer: `node` is the call of the layer (0 unless shared), `tensor` its output. */
export interface TensorRef {
  readonly layer: string;
  readonly node: number;
  readonly tensor: number;
}

/** A pair of numbers (height, width). */
export type Pair = readonly [number, number];

/**
 * A layer's settings that decide its output, in Keras' snake_case names. Which keys are present
 * depends on the class (see {@link normalizeLayerConfig}).
 */
export interface LayerSettings {
  /** InputLayer: the input shape without the batch dimension, e.g. `[32, 32, 3]`. */
  readonly shape?: readonly number[];
  readonly filters?: number;
  readonly kernel_size?: Pair;
  readonly strides?: Pair;
  readonly padding?: 'valid' | 'same';
  readonly dilation_rate?: Pair;
  readonly depth_multiplier?: number;
  readonly activation?: string;
  readonly use_bias?: boolean;
  readonly units?: number;
  readonly rate?: number;
  readonly pool_size?: Pair;
  readonly target_shape?: readonly number[];
  readonly axis?: number;
  readonly momentum?: number;
  readonly epsilon?: number;
  readonly center?: boolean;
  /** BatchNormalization: learn a scale (gamma). */
  readonly scale?: boolean;
  /** Rescaling: `y = x * factor + offset`. */
  readonly factor?: number;
  readonly offset?: number;
  /** ReLU: `min(max(x, 0), max_value)`; null for no cap. */
  readonly max_value?: number | null;
  /** ZeroPadding2D: `[[top, bottom], [left, right]]`. */
  readonly zero_padding?: readonly [Pair, Pair];
}

/** One layer of a {@link KerasGraph}. */
export interface GraphLayer {
  readonly className: SupportedLayer;
  readonly name: string;
  readonly settings: LayerSettings;
  /** The tensors the layer is applied to (empty for an InputLayer). */
  readonly inbound: readonly TensorRef[];
}

/** A Keras model's layer graph. */
export interface KerasGraph {
  readonly name: string;
  /** How the model was built: `Sequential` or the functional API (`Functional`, Keras 2 `Model`). */
  readonly style: 'functional' | 'sequential';
  /** Layers in the saved order, which is a topological order. */
  readonly layers: readonly GraphLayer[];
  readonly inputs: readonly TensorRef[];
  readonly outputs: readonly TensorRef[];
}

type Json = Record<string, unknown>;

const SUPPORTED_SET: ReadonlySet<string> = new Set(SUPPORTED_LAYERS);

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The error for a configuration that is not a Keras model this reader understands. */
export function corruptConfig(detail: string): UserError {
  return new UserError('keras.corrupt', `the model configuration is not valid: ${detail}`, {
    detail,
  });
}

/** The error for a layer outside {@link SUPPORTED_LAYERS}, naming it and listing what is. */
export function unsupportedLayer(name: string, className: string, why = ''): UserError {
  return new UserError(
    'keras.unsupported_layer',
    `layer "${name}" (${className}) is not supported${why ? `: ${why}` : ''}; supported layers: ${SUPPORTED_LAYERS.join(', ')}`,
    { layer: name, className, supported: SUPPORTED_LAYERS.join(', ') },
  );
}

function num(v: unknown, what: string, layer: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw corruptConfig(`layer "${layer}": ${what} is not a number`);
  }
  return v;
}

function pair(v: unknown, what: string, layer: string): Pair {
  if (typeof v === 'number') return [num(v, what, layer), v];
  if (Array.isArray(v) && v.length === 2) return [num(v[0], what, layer), num(v[1], what, layer)];
  if (Array.isArray(v) && v.length === 1) {
    const n = num(v[0], what, layer);
    return [n, n];
  }
  throw corruptConfig(`layer "${layer}": ${what} is not one or two numbers`);
}

function padding(v: unknown, layer: string, className: string): 'valid' | 'same' {
  const p = typeof v === 'string' ? v.toLowerCase() : v;
  if (p === undefined || p === 'valid') return 'valid';
  if (p === 'same') return 'same';
  throw unsupportedLayer(layer, className, `padding "${String(v)}"`);
}

/**
 * The activation a layer names, in Keras spelling. Keras 3 writes a built-in activation as its
 * name; older files may write `{class_name: 'function', config: 'relu'}` or a registered object.
 * @throws {UserError} `keras.unsupported_layer` for another activation (custom functions included).
 */
function activation(v: unknown, layer: string, className: string): string {
  let name: unknown = v ?? 'linear';
  if (isObject(name)) name = typeof name.config === 'string' ? name.config : name.class_name;
  if (typeof name !== 'string') throw corruptConfig(`layer "${layer}": activation`);
  const lower = name.toLowerCase();
  const canonical = lower === 'silu' ? 'swish' : lower;
  if (!(SUPPORTED_ACTIVATIONS as readonly string[]).includes(canonical)) {
    throw unsupportedLayer(
      layer,
      className,
      `activation "${name}" (supported: ${SUPPORTED_ACTIVATIONS.join(', ')})`,
    );
  }
  return canonical;
}

function shapeWithoutBatch(v: unknown, layer: string): number[] {
  if (!Array.isArray(v) || v.length < 2) throw corruptConfig(`layer "${layer}": input shape`);
  return v.slice(1).map((d) => {
    if (d === null) {
      throw new UserError(
        'keras.unknown_input_size',
        `layer "${layer}": the input size is not fixed (${JSON.stringify(v)})`,
        { layer },
      );
    }
    return num(d, 'input shape', layer);
  });
}

/** The input shape an InputLayer (or a Keras 2 first layer) declares, without the batch. */
export function declaredInputShape(config: Json, layer: string): number[] | undefined {
  const batch = config.batch_shape ?? config.batch_input_shape;
  if (batch !== undefined && batch !== null) return shapeWithoutBatch(batch, layer);
  const inputShape: unknown = config.input_shape;
  if (Array.isArray(inputShape))
    return shapeWithoutBatch([null, ...(inputShape as unknown[])], layer);
  return undefined;
}

function checkChannelsLast(config: Json, layer: string, className: string): void {
  const format = config.data_format;
  if (format === 'channels_first') {
    throw new UserError(
      'keras.channels_first',
      `layer "${layer}" (${className}) uses data_format="channels_first"; only channels_last (height, width, channels) is supported`,
      { layer },
    );
  }
}

/**
 * The settings of one layer, from its Keras 2, Keras 3 or TF.js configuration, with defaults
 * filled in the way Keras fills them.
 *
 * @param className the Keras class name (`class_name`).
 * @param config the layer's `config` object.
 * @param name the layer's name, for messages.
 * @throws {UserError} `keras.unsupported_layer` (a class, activation, padding or option outside
 *   what is supported: grouped or dilated depthwise convolutions, a ReLU with a slope...),
 *   `keras.channels_first`, `keras.corrupt`.
 */
export function normalizeLayerConfig(
  className: SupportedLayer,
  config: Json,
  name: string,
): LayerSettings {
  checkChannelsLast(config, name, className);
  const conv = (): LayerSettings => {
    const dilation = pair(config.dilation_rate ?? 1, 'dilation_rate', name);
    const groups = config.groups ?? 1;
    if (groups !== 1) throw unsupportedLayer(name, className, `groups=${JSON.stringify(groups)}`);
    return {
      kernel_size: pair(config.kernel_size, 'kernel_size', name),
      strides: pair(config.strides ?? 1, 'strides', name),
      padding: padding(config.padding, name, className),
      dilation_rate: dilation,
      activation: activation(config.activation, name, className),
      use_bias: config.use_bias !== false,
    };
  };
  switch (className) {
    case 'InputLayer': {
      const shape = declaredInputShape(config, name);
      if (!shape) throw corruptConfig(`InputLayer "${name}" has no shape`);
      return { shape };
    }
    case 'Conv2D':
      return { filters: num(config.filters, 'filters', name), ...conv() };
    case 'DepthwiseConv2D':
      return {
        depth_multiplier: num(config.depth_multiplier ?? 1, 'depth_multiplier', name),
        ...conv(),
      };
    case 'SeparableConv2D':
      return {
        filters: num(config.filters, 'filters', name),
        depth_multiplier: num(config.depth_multiplier ?? 1, 'depth_multiplier', name),
        ...conv(),
      };
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const pool = pair(config.pool_size ?? 2, 'pool_size', name);
      return {
        pool_size: pool,
        strides: config.strides == null ? pool : pair(config.strides, 'strides', name),
        padding: padding(config.padding, name, className),
      };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      if (config.keepdims === true) throw unsupportedLayer(name, className, 'keepdims=True');
      return {};
    case 'Dense':
      return {
        units: num(config.units, 'units', name),
        activation: activation(config.activation, name, className),
        use_bias: config.use_bias !== false,
      };
    case 'Dropout':
      return { rate: num(config.rate, 'rate', name) };
    case 'Flatten':
      return {};
    case 'Reshape': {
      const target = config.target_shape;
      if (!Array.isArray(target)) throw corruptConfig(`layer "${name}": target_shape`);
      return { target_shape: target.map((d) => num(d, 'target_shape', name)) };
    }
    case 'BatchNormalization': {
      let axis: unknown = config.axis ?? -1;
      if (Array.isArray(axis)) {
        if (axis.length !== 1)
          throw unsupportedLayer(name, className, `axis=${JSON.stringify(axis)}`);
        axis = axis[0] as unknown;
      }
      const a = num(axis, 'axis', name);
      if (a !== -1 && a !== 3 && a !== 1) throw unsupportedLayer(name, className, `axis=${a}`);
      return {
        axis: a,
        momentum: num(config.momentum ?? 0.99, 'momentum', name),
        epsilon: num(config.epsilon ?? 0.001, 'epsilon', name),
        center: config.center !== false,
        scale: config.scale !== false,
      };
    }
    case 'Activation':
      return { activation: activation(config.activation, name, className) };
    case 'ReLU': {
      const slope = config.negative_slope ?? 0;
      const threshold = config.threshold ?? 0;
      if (slope !== 0 || threshold !== 0) {
        throw unsupportedLayer(
          name,
          className,
          `negative_slope=${JSON.stringify(slope)}, threshold=${JSON.stringify(threshold)}`,
        );
      }
      const max = config.max_value;
      return { max_value: max == null ? null : num(max, 'max_value', name) };
    }
    case 'Softmax': {
      // TF.js writes axis 1 for its (rank-2) default, Keras -1.
      const axis: unknown =
        Array.isArray(config.axis) && config.axis.length === 1
          ? (config.axis[0] as unknown)
          : (config.axis ?? -1);
      return { axis: num(axis, 'axis', name) };
    }
    case 'Add':
      return {};
    case 'Concatenate':
      return { axis: num(config.axis ?? -1, 'axis', name) };
    case 'ZeroPadding2D': {
      const p = config.padding ?? 1;
      if (typeof p === 'number')
        return {
          zero_padding: [
            [p, p],
            [p, p],
          ],
        };
      if (Array.isArray(p) && p.length === 2) {
        const [h, w] = p as unknown[];
        const side = (v: unknown): Pair =>
          typeof v === 'number' ? [v, v] : pair(v, 'padding', name);
        return { zero_padding: [side(h), side(w)] };
      }
      throw corruptConfig(`layer "${name}": padding`);
    }
    case 'Rescaling': {
      const s = config.scale;
      const o = config.offset ?? 0;
      if (typeof s !== 'number' || typeof o !== 'number') {
        throw unsupportedLayer(name, className, 'per-channel scale or offset');
      }
      return { factor: s, offset: o };
    }
  }
}

/** Whether `className` names a supported layer. */
export function isSupportedLayer(className: string): className is SupportedLayer {
  return SUPPORTED_SET.has(className);
}

/**
 * Checks that a layer entry is a plain built-in Keras layer of a supported class.
 * @throws {UserError} `keras.unsupported_layer` naming the layer: Lambda (Python code, never
 *   run), a nested model, a custom class (`registered_name` like `Custom>MyLayer`), or any
 *   class not in {@link SUPPORTED_LAYERS}.
 */
export function supportedClass(entry: Json, name: string): SupportedLayer {
  const className = typeof entry.class_name === 'string' ? entry.class_name : '';
  if (className === 'Lambda') {
    throw unsupportedLayer(
      name,
      className,
      'a Lambda layer holds Python code, which is never run here',
    );
  }
  if (['Functional', 'Sequential', 'Model'].includes(className)) {
    throw unsupportedLayer(name, className, 'a model nested as a layer');
  }
  // Keras registers custom classes as `package>Name` (register_keras_serializable).
  const registered = entry.registered_name;
  if (typeof registered === 'string' && registered.includes('>')) {
    throw unsupportedLayer(name, className, 'a custom layer class');
  }
  if (!isSupportedLayer(className)) throw unsupportedLayer(name, className || '?');
  return className;
}
