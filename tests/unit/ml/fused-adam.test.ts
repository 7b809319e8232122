import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../../src/ml/backend.ts';
import { FusedAdamOptimizer, createAdam } from '../../../src/ml/fused-adam.ts';
import * as adamUpdate from '../../../src/ml/kernels/adam-update.ts';
import { ADAM_UPDATE } from '../../../src/ml/kernels/adam-update.ts';
import { HeapKernels } from '../../../src/ml/kernels/heap-kernels.ts';
import { getOptimizerSlots, setOptimizerSlots } from '../../../src/ml/optimizer-state.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

afterAll(async () => {
  await tf.setBackend('wasm');
});

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = (s / 2 ** 31) * 2 - 1;
  }
  return out;
}

/**
 * Variables of a small conv + dense net (sizes with a 4-lane tail: 3·3·2·5 = 90, 23) and a loss
 * whose gradients differ in scale per variable.
 */
function makeProblem(prefix: string) {
  const w = tf.variable(tf.tensor4d(values(90, 1), [3, 3, 2, 5]), true, `${prefix}w`);
  const d = tf.variable(tf.tensor2d(values(23 * 5, 2), [23, 5]), true, `${prefix}d`);
  const b = tf.variable(tf.tensor1d(values(5, 3)), true, `${prefix}b`);
  const x = tf.tensor4d(values(2 * 6 * 6 * 2, 4), [2, 6, 6, 2]);
  const e = tf.tensor2d(values(4 * 23, 5), [4, 23]);
  const loss = (): tf.Scalar =>
    tf.tidy(() =>
      tf.add(
        tf.sum<tf.Scalar>(tf.square(tf.add(tf.conv2d(x, w, 1, 'valid'), b))),
        tf.mul<tf.Scalar>(tf.sum(tf.sin(tf.matMul(e, d))), 3),
      ),
    );
  const vars: tf.Variable[] = [w, d, b];
  return { vars, loss, dispose: () => tf.dispose([w, d, b, x, e]) };
}

describe.each(['wasm', 'cpu'])('FusedAdamOptimizer on %s', (backend) => {
  it('updates weights and moments bit for bit as tf.train.adam, without leaking tensors', async () => {
    await tf.setBackend(backend);
    const stock = makeProblem(`stock-${backend}-`);
    const fused = makeProblem(`fused-${backend}-`);
    const a = tf.train.adam(0.01);
    const b = createAdam(0.01);
    expect(b).toBeInstanceOf(FusedAdamOptimizer);
    const adamUpdate = vi.spyOn(HeapKernels.prototype, 'adamUpdate');
    const runKernel = vi.spyOn(tf.engine(), 'runKernel');
    a.minimize(stock.loss);
    b.minimize(fused.loss);
    const before = tf.memory().numTensors;
    for (let t = 0; t < 25; t++) {
      if (t === 10) {
        // A learning-rate schedule sets the field between steps, as the trainer does.
        (a as unknown as { learningRate: number }).learningRate = 0.003;
        (b as unknown as { learningRate: number }).learningRate = 0.003;
      }
      a.minimize(stock.loss);
      b.minimize(fused.loss);
    }
    expect(tf.memory().numTensors).toBe(before);
    // 26 steps of 3 variables through the fused kernel, on wasm in heap-kernels.wasm.
    expect(runKernel.mock.calls.filter(([name]) => name === ADAM_UPDATE)).toHaveLength(78);
    expect(adamUpdate).toHaveBeenCalledTimes(backend === 'wasm' ? 78 : 0);
    adamUpdate.mockRestore();
    runKernel.mockRestore();
    stock.vars.forEach((v, i) => {
      expect([...fused.vars[i]!.dataSync()]).toEqual([...v.dataSync()]);
    });
    // Weights moved: the test would not pass with updates that do nothing.
    expect(fused.vars[0]!.dataSync()[0]).not.toBe(values(1, 1)[0]);
    const [slotsA, slotsB] = [await getOptimizerSlots(a), await getOptimizerSlots(b)];
    expect(slotsB.map((s) => [...s.values])).toEqual(slotsA.map((s) => [...s.values]));
    a.dispose();
    b.dispose();
    stock.dispose();
    fused.dispose();
  });
});

describe('FusedAdamOptimizer without its kernel', () => {
  it('runs tfjs-core’s Adam where the fused kernel cannot run (here: its wasm heap unreachable)', async () => {
    await tf.setBackend('wasm');
    const stock = makeProblem('fallback-stock-');
    const fused = makeProblem('fallback-fused-');
    const a = tf.train.adam(0.01);
    const b = createAdam(0.01);
    const heap = vi.spyOn(HeapKernels.prototype, 'adamUpdate');
    const available = vi.spyOn(adamUpdate, 'adamUpdateAvailable').mockReturnValue(false);
    for (let t = 0; t < 3; t++) {
      a.minimize(stock.loss);
      b.minimize(fused.loss);
    }
    expect(available).toHaveBeenCalled();
    expect(heap).not.toHaveBeenCalled();
    available.mockRestore();
    heap.mockRestore();
    stock.vars.forEach((v, i) => expect([...fused.vars[i]!.dataSync()]).toEqual([...v.dataSync()]));
    [a, b].forEach((o) => o.dispose());
    stock.dispose();
    fused.dispose();
  });
});

describe('FusedAdamOptimizer state', () => {
  it('resumes from another Adam’s slots and goes on as it does', async () => {
    await tf.setBackend('wasm');
    const whole = makeProblem('whole-');
    const resumed = makeProblem('resumed-');
    const a = createAdam(0.02);
    for (let t = 0; t < 13; t++) a.minimize(whole.loss);
    resumed.vars.forEach((v, i) => v.assign(whole.vars[i]!));
    const b = tf.train.adam(0.02);
    await setOptimizerSlots(b, await getOptimizerSlots(a));
    const c = createAdam(0.02);
    await setOptimizerSlots(c, await getOptimizerSlots(b));
    for (let t = 0; t < 7; t++) {
      a.minimize(whole.loss);
      c.minimize(resumed.loss);
    }
    whole.vars.forEach((v, i) =>
      expect([...resumed.vars[i]!.dataSync()]).toEqual([...v.dataSync()]),
    );
    [a, b, c].forEach((o) => o.dispose());
    whole.dispose();
    resumed.dispose();
  });
});
