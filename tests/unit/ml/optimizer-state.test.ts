import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/ml/backend.ts';
import { getOptimizerSlots, setOptimizerSlots } from '../../../src/ml/optimizer-state.ts';

beforeAll(async () => {
  await initBackend();
});

/** One Adam step on `v` towards zero (loss = sum of squares). */
function step(optimizer: tf.Optimizer, v: tf.Variable): void {
  optimizer.minimize(() => tf.sum<tf.Scalar>(tf.square(v)));
}

describe('setOptimizerSlots', () => {
  it('restores Adam so that the next steps match an uninterrupted run bit for bit', async () => {
    const start = [0.3, -1.2, 2.5, 0.01];
    const whole = tf.variable(tf.tensor(start));
    const resumed = tf.variable(tf.tensor(start));
    const a = tf.train.adam(0.01);
    // 37 steps: tfjs's own setWeights (pow(beta, t + 1)) gives other float32 bias corrections here.
    for (let t = 0; t < 37; t++) step(a, whole);
    resumed.assign(whole);
    const slots = await getOptimizerSlots(a);
    expect(slots[0]?.values[0]).toBe(37); // the step count
    const b = tf.train.adam(0.01);
    const before = tf.memory().numTensors;
    await setOptimizerSlots(b, slots);
    // Two moment slots for one variable; nothing else left behind.
    expect(tf.memory().numTensors).toBe(before + 2);
    const internals = (o: tf.Optimizer) =>
      o as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    expect(internals(b).accBeta1.dataSync()[0]).toBe(internals(a).accBeta1.dataSync()[0]);
    expect(internals(b).accBeta2.dataSync()[0]).toBe(internals(a).accBeta2.dataSync()[0]);
    for (let t = 0; t < 20; t++) {
      step(a, whole);
      step(b, resumed);
    }
    expect([...resumed.dataSync()]).toEqual([...whole.dataSync()]);
    a.dispose();
    b.dispose();
    tf.dispose([whole, resumed]);
  });

  it('shows the bias corrections tfjs Adam.setWeights alone would set differ (the bug it mends)', async () => {
    const v = tf.variable(tf.tensor([1, 2]));
    const a = tf.train.adam(0.01);
    for (let t = 0; t < 37; t++) step(a, v);
    const named = await a.getWeights();
    const plain = tf.train.adam(0.01);
    await plain.setWeights(named);
    const acc2 = (o: tf.Optimizer) =>
      (o as unknown as { accBeta2: tf.Variable }).accBeta2.dataSync()[0];
    expect(acc2(plain)).not.toBe(acc2(a));
    tf.dispose(named.filter((n) => !(n.tensor instanceof tf.Variable)).map((n) => n.tensor));
    a.dispose();
    plain.dispose();
    v.dispose();
  });
});
