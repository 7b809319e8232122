/**
 * A small executor for the graph of a TF.js layers model, so that explanations can read and
 * replace intermediate tensors: the activations of any layer, inside nested models too.
 *
 * Why not `tf.model({ inputs, outputs: [layer.output, model.output] })`: that fails with a
 * "disconnected graph" error when the layer lives inside a model used as a layer (a pretrained
 * base plus a new head), and it cannot feed a value into the middle of the graph, which is what
 * differentiating with respect to a layer's activations needs. Here every node is applied
 * eagerly (`layer.apply(tensors, { training: false })`) from the model's own topology, any
 * symbolic tensor can be fed, and a nested model can be run by a hook (its inside computed with
 * the same executor: the "two stages" of an explanation through a nested model).
 */
import type * as tf from '@tensorflow/tfjs';

/** A layer of a layers model. */
export type Layer = tf.LayersModel['layers'][number];

/** A model used as a layer (a `tf.LayersModel`, `tf.Sequential` or functional model). */
export type Container = tf.LayersModel;

/** Values given for symbolic tensors, by `SymbolicTensor.id`. */
export type Feeds = ReadonlyMap<number, tf.Tensor>;

/** Replaces the computation of one layer (a nested model): tensors in, tensors out. */
export type LayerHook = (inputs: tf.Tensor[]) => tf.Tensor[];

/** True for a model's input placeholder (`InputLayer`), which only a feed can give a value. */
export function isInput(layer: Layer): boolean {
  return layer.getClassName() === 'InputLayer';
}

/** True when a layer is itself a model (has its own inputs and outputs). */
export function isContainer(layer: Layer): layer is Layer & Container {
  const l = layer as Partial<Container>;
  return Array.isArray(l.inputs) && Array.isArray(l.outputs) && Array.isArray(l.layers);
}

/**
 * Computes `fetches` from `feeds`: each symbolic tensor not fed is computed by applying its
 * source layer (inference mode) to its inputs, recursively. Results are memoised per call.
 *
 * Tensors: the results and every intermediate are new tensors; call inside `tf.tidy`.
 * @throws {Error} when a model input needed by a fetch is not fed.
 */
export function evaluate(
  fetches: readonly tf.SymbolicTensor[],
  feeds: Feeds,
  hooks: ReadonlyMap<Layer, LayerHook> = new Map(),
): tf.Tensor[] {
  const values = new Map<number, tf.Tensor>(feeds);
  const visit = (sym: tf.SymbolicTensor): tf.Tensor => {
    const known = values.get(sym.id);
    if (known) return known;
    const layer = sym.sourceLayer;
    const node = layer.inboundNodes[sym.nodeIndex];
    if (!node || isInput(layer)) {
      throw new Error(`no value was given for the model input "${sym.name}"`);
    }
    const inputs = node.inputTensors.map(visit);
    const hook = hooks.get(layer);
    let outputs: tf.Tensor[];
    if (hook) outputs = hook(inputs);
    else {
      const out = layer.apply(inputs.length === 1 ? inputs[0]! : inputs, {
        ...(node.callArgs ?? {}),
        training: false,
      }) as tf.Tensor | tf.Tensor[];
      outputs = Array.isArray(out) ? out : [out];
    }
    node.outputTensors.forEach((s, i) => {
      const t = outputs[i];
      if (t) values.set(s.id, t);
    });
    const value = values.get(sym.id);
    if (!value) throw new Error(`layer "${layer.name}" gave no output ${sym.tensorIndex}`);
    return value;
  };
  return fetches.map(visit);
}

/**
 * The symbolic tensors of a model's graph, inputs before the tensors computed from them
 * (a topological order), from its inputs to its outputs.
 */
export function graphTensors(model: Container): tf.SymbolicTensor[] {
  const seen = new Set<number>();
  const order: tf.SymbolicTensor[] = [];
  const visit = (sym: tf.SymbolicTensor): void => {
    if (seen.has(sym.id)) return;
    seen.add(sym.id);
    const node = sym.sourceLayer.inboundNodes[sym.nodeIndex];
    if (!isInput(sym.sourceLayer)) for (const input of node?.inputTensors ?? []) visit(input);
    order.push(sym);
  };
  for (const out of model.outputs) visit(out);
  return order;
}
