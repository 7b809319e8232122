import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/** Deterministic uniform values in [-1, 1) (mulberry32), so failures reproduce. */
export function randomValues(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

/**
 * max|actual − expected| / max|expected| (a NaN anywhere gives NaN, which fails any bound); the
 * lengths must agree.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)));
    scale = Math.max(scale, Math.abs(expected[i] ?? 0));
  }
  return diff / scale;
}

/**
 * Runs `compute` on wasm (fast kernels installed; the current backend) and on cpu, asserting that
 * the wasm run leaves the number of tensors unchanged; returns both results' values.
 */
export async function onBothBackends(
  compute: () => tf.Tensor[],
): Promise<[Float32Array[], Float32Array[]]> {
  const run = () => tf.tidy(() => compute().map((t) => t.dataSync() as Float32Array));
  const before = tf.memory().numTensors;
  const wasm = run();
  expect(tf.memory().numTensors).toBe(before);
  await tf.setBackend('cpu');
  const cpu = run();
  await tf.setBackend('wasm');
  return [wasm, cpu];
}
