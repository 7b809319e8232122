import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildForward } from '../../../src/explain/forward.ts';
import { planScores } from '../../../src/explain/logits.ts';
import { initBackend } from '../../../src/ml/backend.ts';

beforeAll(async () => {
  await initBackend();
});

/** MobileNet's head: pooled features -> reshape -> 1x1 conv -> softmax -> reshape. */
function mobilenetLikeHead(): tf.LayersModel {
  const inp = tf.input({ shape: [4, 4, 3] });
  let h = tf.layers
    .conv2d({ filters: 5, kernelSize: 3, activation: 'relu', name: 'conv' })
    .apply(inp) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reshape({ targetShape: [1, 1, 5] }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dropout({ rate: 0.5 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers
    .conv2d({ filters: 7, kernelSize: 1, name: 'conv_preds' })
    .apply(h) as tf.SymbolicTensor;
  h = tf.layers
    .activation({ activation: 'softmax', name: 'act_softmax' })
    .apply(h) as tf.SymbolicTensor;
  h = tf.layers.reshape({ targetShape: [7] }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: inp, outputs: h });
}

describe('the pre-softmax scores', () => {
  it('are the input of a final softmax activation, through reshapes and dropout', () => {
    const m = mobilenetLikeHead();
    const plan = planScores(m);
    expect(plan.kind).toBe('pre-softmax');
    expect(plan.tensor.sourceLayer.name).toBe('conv_preds');
    tf.tidy(() => {
      const x = tf.randomUniform<tf.Rank.R4>([2, 4, 4, 3], 0, 1, 'float32', 5);
      const scores = buildForward(m).run(x);
      expect(scores.shape).toEqual([2, 7]);
      const probs = m.predict(x) as tf.Tensor;
      expect(
        tf
          .abs(tf.sub(tf.softmax(scores), probs))
          .max()
          .dataSync()[0],
      ).toBeLessThan(1e-6);
    });
    m.dispose();
  });

  it("are a softmax Dense layer's linear part", () => {
    const m = tf.sequential({
      layers: [tf.layers.dense({ units: 3, inputShape: [4], activation: 'softmax' })],
    });
    expect(planScores(m).kind).toBe('pre-softmax');
    tf.tidy(() => {
      const x = tf.randomNormal([1, 4]);
      const [kernel, bias] = m.layers[0]!.getWeights();
      const expected = tf.add(tf.matMul(x, kernel as tf.Tensor2D), bias!);
      const got = buildForward(m).scores.finish(x);
      expect(tf.abs(tf.sub(got, expected)).max().dataSync()[0]).toBeLessThan(1e-6);
    });
    m.dispose();
  });

  it('are the output of a model without a softmax', () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4] })] });
    expect(planScores(m).kind).toBe('output');
    m.dispose();
  });
});
