import * as tf from '@tensorflow/tfjs';

/** One line of a {@link ShapeError}'s table: a layer and the output shape it gave. */
export interface TracedLayer {
  readonly name: string;
  /** Keras class name, e.g. `Conv2D`. */
  readonly type: string;
  /** Output shape with the batch dimension as `null`, e.g. `[null, 8, 8, 96]`. */
  readonly outputShape: readonly (number | null)[];
}

/**
 * Thrown by a model builder when a layer's output would have a dimension below 1 (or the layer
 * refuses its input): the message names the model and the layer, and lists every layer's output
 * shape up to it, as Keras' "Negative dimension size" error does not.
 */
export class ShapeError extends Error {
  constructor(
    readonly model: string,
    readonly layers: readonly TracedLayer[],
    reason: string,
  ) {
    super(
      `${model}: ${reason}\nlayer output shapes:\n` +
        layers
          .map((l) => `  ${l.name.padEnd(24)} ${l.type.padEnd(22)} ${fmt(l.outputShape)}`)
          .join('\n'),
    );
    this.name = 'ShapeError';
  }
}

function fmt(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? 'batch' : String(d))).join(', ')}]`;
}

/**
 * Builds a functional (Keras functional API) model layer by layer, checking every output shape
 * as it goes, so that a builder fails at the first impossible layer with the whole table of
 * shapes rather than producing a model with a negative or zero dimension (tfjs-layers computes
 * `valid` outputs like `32 - 11 + 1` without complaint, even when they are below 1).
 *
 * @example
 * const g = new GraphBuilder('tiny', [28, 28, 1]);
 * const x = g.apply(tf.layers.conv2d({ filters: 8, kernelSize: 3 }), g.input);
 * const model = g.build(g.apply(tf.layers.globalAveragePooling2d({}), x));
 */
export class GraphBuilder {
  readonly input: tf.SymbolicTensor;
  private readonly trace: TracedLayer[] = [];

  constructor(
    readonly name: string,
    inputShape: readonly number[],
  ) {
    this.input = tf.input({ shape: [...inputShape], name: `${name}_input` });
    this.trace.push({ name: this.input.name, type: 'InputLayer', outputShape: this.input.shape });
  }

  /**
   * Applies `layer` to `x` and checks the output shape.
   * @throws {ShapeError} when a dimension of the output is below 1 or the layer rejects `x`.
   */
  apply(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor {
    let y: tf.SymbolicTensor;
    try {
      y = layer.apply(x) as tf.SymbolicTensor;
    } catch (e) {
      throw new ShapeError(
        this.name,
        this.trace,
        `layer "${layer.name}" (${layer.getClassName()}) cannot take its input: ${(e as Error).message}`,
      );
    }
    this.trace.push({ name: layer.name, type: layer.getClassName(), outputShape: y.shape });
    if (y.shape.some((d) => d !== null && d < 1)) {
      throw new ShapeError(
        this.name,
        this.trace,
        `layer "${layer.name}" (${layer.getClassName()}) would output ${fmt(y.shape)}: a dimension below 1 (the input is too small for this sequence of layers)`,
      );
    }
    return y;
  }

  /** Applies layers in order, each to the previous output. */
  chain(x: tf.SymbolicTensor, ...layers: tf.layers.Layer[]): tf.SymbolicTensor {
    return layers.reduce((t, l) => this.apply(l, t), x);
  }

  /** The output shape of every layer applied so far, in order. */
  get layers(): readonly TracedLayer[] {
    return this.trace;
  }

  /** The model from the input to `outputs`. */
  build(outputs: tf.SymbolicTensor): tf.LayersModel {
    return tf.model({ inputs: this.input, outputs, name: this.name });
  }
}

/** Deterministic initializers: each call returns the next seed's initializer. */
export function seededInit(
  seed: number,
  kind: 'glorotUniform' | 'heNormal',
): () => ReturnType<typeof tf.initializers.heNormal> {
  let s = seed;
  return () =>
    kind === 'heNormal'
      ? tf.initializers.heNormal({ seed: s++ })
      : tf.initializers.glorotUniform({ seed: s++ });
}
