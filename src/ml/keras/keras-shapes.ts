/**
 * Output shapes of every layer of a {@link KerasGraph} for a given input size, computed from the
 * settings alone (no weights, no tensors): what Keras prints in `model.summary()`, and where it
 * would stop with "Negative dimension size" for an input that is too small (AlexNet's 11×11
 * stride-4 convolution and three 3×3 stride-2 poolings on 32×32 CIFAR-10 images).
 *
 * Formulas (Keras `compute_conv_output_shape`): `valid`: ⌊(n − d·(k − 1) − 1) / s⌋ + 1,
 * `same`: ⌈n / s⌉; pooling the same with d = 1.
 */
import type { GraphLayer, KerasGraph, Pair } from './keras-graph.ts';

/** The first layer whose output would be impossible, and why. */
export interface ShapeFailure {
  readonly layer: string;
  readonly className: string;
  /** The input shape the layer received (without the batch). */
  readonly input: readonly number[];
  /** The output shape it would give (a dimension below 1), or none when it cannot apply at all. */
  readonly output?: readonly number[];
  readonly reason: 'collapse' | 'mismatch';
}

/** Shapes (without the batch dimension) by layer name, up to the first failure. */
export interface ShapeTrace {
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly failure?: ShapeFailure;
}

function spatial(n: number, k: number, s: number, pad: 'valid' | 'same', d = 1): number {
  return pad === 'same' ? Math.ceil(n / s) : Math.floor((n - d * (k - 1) - 1) / s) + 1;
}

function window(
  input: readonly number[],
  kernel: Pair,
  strides: Pair,
  pad: 'valid' | 'same',
  channels: number,
  dilation: Pair = [1, 1],
): number[] {
  return [
    spatial(input[0] ?? 0, kernel[0], strides[0], pad, dilation[0]),
    spatial(input[1] ?? 0, kernel[1], strides[1], pad, dilation[1]),
    channels,
  ];
}

function outputShape(layer: GraphLayer, inputs: readonly (readonly number[])[]): number[] | null {
  const s = layer.settings;
  const x = inputs[0] ?? [];
  const c = x[x.length - 1] ?? 0;
  const conv = (channels: number): number[] =>
    window(
      x,
      s.kernel_size ?? [1, 1],
      s.strides ?? [1, 1],
      s.padding ?? 'valid',
      channels,
      s.dilation_rate,
    );
  switch (layer.className) {
    case 'InputLayer':
      return [...(s.shape ?? [])];
    case 'Conv2D':
    case 'SeparableConv2D':
      return x.length === 3 ? conv(s.filters ?? 0) : null;
    case 'DepthwiseConv2D':
      return x.length === 3 ? conv(c * (s.depth_multiplier ?? 1)) : null;
    case 'MaxPooling2D':
    case 'AveragePooling2D':
      return x.length === 3
        ? window(x, s.pool_size ?? [2, 2], s.strides ?? [2, 2], s.padding ?? 'valid', c)
        : null;
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      return x.length === 3 ? [c] : null;
    case 'Dense':
      return [...x.slice(0, -1), s.units ?? 0];
    case 'Flatten':
      return [x.reduce((a, b) => a * b, 1)];
    case 'Reshape': {
      const target = [...(s.target_shape ?? [])];
      const total = x.reduce((a, b) => a * b, 1);
      const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const unknown = target.indexOf(-1);
      if (unknown >= 0) target[unknown] = known > 0 ? total / known : 0;
      return target.reduce((a, b) => a * b, 1) === total && Number.isInteger(target[unknown] ?? 0)
        ? target
        : null;
    }
    case 'Add': {
      const same = inputs.every((i) => i.length === x.length && i.every((d, k) => d === x[k]));
      return same ? [...x] : null;
    }
    case 'Concatenate': {
      const axis = (s.axis ?? -1) < 0 ? x.length + (s.axis ?? -1) : (s.axis ?? 0) - 1;
      const out = [...x];
      out[axis] = inputs.reduce((sum, i) => sum + (i[axis] ?? 0), 0);
      const fits = inputs.every(
        (i) => i.length === x.length && i.every((d, k) => k === axis || d === x[k]),
      );
      return fits ? out : null;
    }
    case 'ZeroPadding2D': {
      const [[t, b], [l, r]] = s.zero_padding ?? [
        [0, 0],
        [0, 0],
      ];
      return x.length === 3 ? [(x[0] ?? 0) + t + b, (x[1] ?? 0) + l + r, c] : null;
    }
    case 'Dropout':
    case 'BatchNormalization':
    case 'Activation':
    case 'ReLU':
    case 'Softmax':
    case 'Rescaling':
      return [...x];
  }
}

/**
 * Computes every layer's output shape for `inputShape` (default: the shapes the graph declares).
 *
 * @param graph the model's layers.
 * @param inputShape `[height, width, channels]` fed to the (first) input instead of its own.
 * @returns the shapes up to the first layer whose output has a dimension below 1 (`collapse`) or
 *   that cannot take its inputs (`mismatch`: an Add of different shapes, a Conv2D after Flatten).
 */
export function traceShapes(graph: KerasGraph, inputShape?: readonly number[]): ShapeTrace {
  const shapes = new Map<string, readonly number[]>();
  const firstInput = graph.inputs[0]?.layer;
  for (const layer of graph.layers) {
    const inputs = layer.inbound.map((r) => shapes.get(r.layer) ?? []);
    const out =
      layer.className === 'InputLayer' && layer.name === firstInput && inputShape
        ? [...inputShape]
        : outputShape(layer, inputs);
    const input = inputs[0] ?? [];
    if (out === null) {
      return {
        shapes,
        failure: { layer: layer.name, className: layer.className, input, reason: 'mismatch' },
      };
    }
    if (out.some((d) => !(d >= 1))) {
      return {
        shapes,
        failure: {
          layer: layer.name,
          className: layer.className,
          input,
          output: out,
          reason: 'collapse',
        },
      };
    }
    shapes.set(layer.name, out);
  }
  return { shapes };
}
