/**
 * Which layer a class activation map is computed at: the last layer with a spatial output by
 * default (as tf-keras-vis and pytorch-grad-cam advise: the deepest features that still have a
 * position) that every path from the input to the output passes through, or one named by the
 * user. Layers inside nested models count, named `<nested model>/<layer>`.
 */
import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { graphTensors, isContainer, isInput, type Container } from './graph.ts';

const RESAMPLING = /Pooling|Padding|Cropping|Dropout|UpSampling/;

const layerClass = (l: LayerChoice): string => l.tensor.sourceLayer.getClassName();

/** A layer whose output can be explained. */
export interface LayerChoice {
  /** `conv_pw_13_relu`, or `base/conv2` for the layer `conv2` of the nested model `base`. */
  readonly name: string;
  /**
   * The nested models, outermost first, that hold the layer: `[]` for a layer of the model
   * itself, `[base]` for one inside the model-as-a-layer `base`.
   */
  readonly path: readonly Container[];
  /** The layer's output in the graph of the innermost model of {@link path}. */
  readonly tensor: tf.SymbolicTensor;
  /** `[height, width, channels]` of one example's activations. */
  readonly shape: readonly [number, number, number];
}

/**
 * The layers of `model` with a spatial output (`[batch, height, width, channels]`, more than
 * one position), in graph order, nested models included (the nested model's own output is
 * represented by its last inner layer).
 *
 * @example
 * spatialLayers(lenet).map((l) => l.name); // ['conv1', 'pool1', 'conv2', 'pool2']
 */
export function spatialLayers(model: Container): LayerChoice[] {
  const found: LayerChoice[] = [];
  const walk = (container: Container, prefix: string, path: readonly Container[]): void => {
    for (const sym of graphTensors(container)) {
      const layer = sym.sourceLayer;
      if (isInput(layer)) continue;
      if (isContainer(layer)) {
        walk(layer, `${prefix}${layer.name}/`, [...path, layer]);
        continue;
      }
      const [, h, w, c] = sym.shape;
      if (sym.shape.length === 4 && h != null && w != null && c != null && h * w > 1) {
        found.push({ name: `${prefix}${layer.name}`, path, tensor: sym, shape: [h, w, c] });
      }
    }
  };
  walk(model, '', []);
  return found;
}

/**
 * True when every path from `container`'s inputs to its outputs passes through `sym`: walking
 * back from the outputs without crossing `sym` reaches no input. A layer inside one branch of a
 * residual block fails (the shortcut bypasses it); the block's output after the addition passes.
 */
function onEveryPath(container: Container, sym: tf.SymbolicTensor): boolean {
  const seen = new Set<number>([sym.id]);
  const stack = [...container.outputs];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    if (isInput(t.sourceLayer)) return false;
    const node = t.sourceLayer.inboundNodes[t.nodeIndex];
    const inputs = node?.inputTensors ?? [];
    // A node without inputs that is not an input layer cannot be reached around `sym` either.
    stack.push(...inputs);
  }
  return true;
}

/**
 * True when the gradient of the output reaches the input only through `choice`: the layer is on
 * every path of its own (innermost) model, and each nested model of its path is on every path of
 * the model around it.
 */
function coversEveryPath(model: Container, choice: LayerChoice): boolean {
  const containers = [model, ...choice.path];
  for (let i = 1; i < containers.length; i++) {
    const outer = containers[i - 1]!;
    const inner = containers[i]!;
    const outputs = graphTensors(outer).filter((t) => t.sourceLayer === inner);
    if (outputs.length !== 1 || !onEveryPath(outer, outputs[0]!)) return false;
  }
  return onEveryPath(containers[containers.length - 1]!, choice.tensor);
}

/**
 * The layer to explain: the one called `name` (its full name, or its own name when that is
 * unique), or by default the last layer with a spatial output that computes features (not a
 * pooling, padding or dropout layer) and that every path from the input to the output passes
 * through. A residual block's output after the addition qualifies; a layer inside one of its
 * branches does not, since the shortcut carries part of the score around it and the map would
 * show only the branch's share (Selvaraju et al.'s Grad-CAM explains the whole score from one
 * layer's activations; pytorch-grad-cam advises `layer4[-1]`, the last block's output, for
 * ResNets). When no such layer has a spatial output, the last spatial feature layer is taken.
 *
 * @throws {UserError} `argument.invalid` for an unknown name, listing the valid ones, or when the
 *   model has no layer with a spatial output.
 * @example
 * findTargetLayer(mobilenet).name; // 'conv_pw_13_relu'
 * findTargetLayer(lenet).name; // 'conv2'
 * findTargetLayer(resnet18).name; // 'stage3_block2_out' (2x2; stage 4 works at 1x1)
 * findTargetLayer(mobilenet, 'conv_pw_12_relu').shape; // [7, 7, 256]
 */
export function findTargetLayer(model: Container, name?: string): LayerChoice {
  const layers = spatialLayers(model);
  if (layers.length === 0) {
    throw new UserError(
      'argument.invalid',
      `model "${model.name}" has no layer with a spatial output to explain`,
      { value: name ?? model.name, usage: 'a convolutional network' },
    );
  }
  if (name === undefined) {
    // Pooling and padding only resample the last features: explain the features themselves
    // (LeNet: conv2 at 8x8, not pool2 at 4x4).
    const features = layers.filter((l) => !RESAMPLING.test(layerClass(l)));
    for (let i = features.length - 1; i >= 0; i--) {
      if (coversEveryPath(model, features[i]!)) return features[i]!;
    }
    return features[features.length - 1] ?? layers[layers.length - 1]!;
  }
  const exact = layers.find((l) => l.name === name);
  if (exact) return exact;
  const short = layers.filter((l) => l.name.split('/').pop() === name);
  if (short.length === 1) return short[0]!;
  const valid = layers.map((l) => l.name).join(', ');
  throw new UserError(
    'argument.invalid',
    `no layer "${name}" with a spatial output; valid layers: ${valid}`,
    { value: name, usage: `--layer ${layers.map((l) => l.name).join(' | ')}` },
  );
}
