/**
 * Review: the constant-input conv (registered with the conv gradient kernels, as the bot's
 * backend does) beside the explanations that differentiate a network's input (saliency) or a
 * layer's activations (Grad-CAM): the same maps as on the cpu backend without it.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradCam } from '../../../../src/explain/grad-cam.ts';
import { computeSaliency } from '../../../../src/explain/saliency.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { randomValues, relativeError } from './reference.ts';

/** Two convs (the first on the input, biased, linear: the one the constant-input conv takes), pooled, a dense head: [1, 12, 12, 3] -> 4. */
function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3] });
  const c1 = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'c1' })
    .apply(input) as tf.SymbolicTensor;
  const r1 = tf.layers.reLU().apply(c1) as tf.SymbolicTensor;
  const c2 = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'c2' })
    .apply(r1) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(c2) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4 }).apply(flat) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  model.setWeights(
    model.getWeights().map((w, i) => tf.tensor(randomValues(w.size, 40 + i), w.shape)),
  );
  return model;
}

async function maps(backend: string): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const model = buildModel();
  const x = tf.tensor4d(randomValues(12 * 12 * 3, 50), [1, 12, 12, 3]);
  const before = tf.memory().numTensors;
  const saliency = await computeSaliency(model, x);
  const cam = await gradCam(model, x, { layer: 'c2' });
  expect(tf.memory().numTensors).toBe(before);
  x.dispose();
  model.dispose();
  return [saliency.map.data, cam.map.data];
}

describe('explanations beside the constant-input conv', () => {
  beforeAll(() => {
    tf.env().set('IS_TEST', true);
  });
  afterAll(async () => {
    unregisterConvGradientKernels();
    await tf.setBackend('cpu');
  });

  it('gives the saliency and Grad-CAM maps of the cpu backend', async () => {
    unregisterConvGradientKernels();
    const cpu = await maps('cpu');
    registerConvGradientKernels();
    const wasm = await maps('wasm');
    expect(cpu[0]!.some((v) => v > 0)).toBe(true);
    expect(cpu[1]!.some((v) => v > 0)).toBe(true);
    wasm.forEach((m, i) => expect(relativeError(m, cpu[i]!)).toBeLessThan(1e-4));
  });
});
