import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../../src/config.ts';
import { buildMobileNetLike } from '../../../../src/ml/architectures/mobilenet-fashion.ts';
import { buildResNet20 } from '../../../../src/ml/architectures/resnet20.ts';
import { createAdam } from '../../../../src/ml/fused-adam.ts';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { allowNativeKernels, heapKernels } from '../../../../src/ml/kernels/heap-kernels.ts';
import { kernelEngine, nativeKernels } from '../../../../src/ml/kernels/native-kernels.ts';
import { heapOffset, isWasmBackend } from '../../../../src/ml/kernels/wasm-heap.ts';
import { randomValues, relativeError } from './reference.ts';

/**
 * The native build of the in-place kernels (native/, built at install where a compiler exists)
 * against the same kernels in WebAssembly: compiled from the same C with floating-point
 * contraction off, they give the same bits. The Winograd convolutions and filter gradients
 * written for wide vectors (native/src/wide-kernels.h: AVX-512 or AVX2, fused multiply-adds)
 * sum in another order, so they are held to float32 rounding instead:
 * max|native − cpu| ≤ {@link WIDE_TOLERANCE} · max|cpu| per tensor against the cpu backend (the
 * bound the kernel tests hold every fast kernel to), or at most 1.25 times the wasm kernels' own
 * error where that is larger; and bit for bit with the wasm kernels with the wide kernels off.
 * Skipped where the addon was not built (then the wasm kernels run, as the last test checks in a
 * child process).
 */
const built = kernelEngine().engine === 'native';

/** Relative float32 tolerance of the wide kernels against the cpu backend (see above). */
const WIDE_TOLERANCE = 1e-5;

/** The wide-vector kernels on or off (where the CPU has none, a no-op). */
function setWide(on: boolean): boolean {
  const fn = nativeKernels()?.setWide as ((on: boolean) => boolean) | undefined;
  return fn === undefined ? false : fn(on);
}

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  registerConvGradientKernels();
  await tf.setBackend('wasm');
});

afterAll(async () => {
  allowNativeKernels(true);
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

/** `compute`'s results with the WebAssembly kernels and with the native ones. */
function bothEngines(compute: () => tf.Tensor[]): [Float32Array[], Float32Array[]] {
  const run = () => tf.tidy(() => compute().map((t) => t.dataSync() as Float32Array));
  allowNativeKernels(false);
  const wasm = run();
  allowNativeKernels(true);
  const before = tf.memory().numTensors;
  const native = run();
  expect(tf.memory().numTensors).toBe(before);
  return [wasm, native];
}

describe.skipIf(!built)('native kernels', () => {
  it('run in place of the wasm ones and say which instruction set they chose', () => {
    const backend = tf.backend();
    if (!isWasmBackend(backend)) throw new Error('wasm backend expected');
    expect(heapKernels(backend)?.engine).toMatch(/^native (avx512|avx2|sse2|neon|generic)$/);
    allowNativeKernels(false);
    expect(heapKernels(backend)?.engine).toBe('wasm');
    allowNativeKernels(true);
  });

  const convCases = [
    { name: 'Winograd 3x3 (ResNet-20, 16 channels)', x: [2, 12, 12, 16], f: [3, 3, 16, 16], s: 1 },
    { name: 'Winograd 3x3 over 64 channels', x: [1, 8, 8, 64], f: [3, 3, 64, 32], s: 1 },
    {
      name: 'Winograd 3x3, ragged 11x7 maps, 32 into 48',
      x: [3, 11, 7, 32],
      f: [3, 3, 32, 48],
      s: 1,
    },
    { name: 'pointwise 1x1, 126 pixels, 16 into 32', x: [2, 7, 9, 16], f: [1, 1, 16, 32], s: 1 },
    { name: 'pointwise 1x1, 64 into 128', x: [3, 4, 4, 64], f: [1, 1, 64, 128], s: 1 },
    { name: 'direct 5x5 (LeNet conv1)', x: [3, 28, 28, 1], f: [5, 5, 1, 6], s: 1 },
    { name: 'direct 3x3 of 3 channels (ResNet-20 first)', x: [2, 9, 9, 3], f: [3, 3, 3, 16], s: 1 },
    // The wide im2col products (convGemm and its gradients).
    { name: 'strided 3x3, 16 into 32 (ResNet-20)', x: [2, 10, 10, 16], f: [3, 3, 16, 32], s: 2 },
    { name: 'strided 3x3, ragged 9x7 maps, 8 into 16', x: [3, 9, 7, 8], f: [3, 3, 8, 16], s: 2 },
    { name: 'strided 1x1, 32 into 64 (a shortcut)', x: [2, 8, 8, 32], f: [1, 1, 32, 64], s: 2 },
    { name: 'strided 5x5 of 3 channels, stride 3', x: [2, 13, 11, 3], f: [5, 5, 3, 16], s: 3 },
  ] as const;

  /** A fused conv's output and its gradients with respect to x and the filter. */
  function convResults({ x, f, s }: (typeof convCases)[number]): tf.Tensor[] {
    const count = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);
    const xt = tf.tensor4d(randomValues(count(x), 11), [...x]);
    const ft = tf.tensor4d(randomValues(count(f), 12), [...f]);
    const bias = tf.tensor1d(randomValues(f[3], 13));
    const conv = (a: tf.Tensor, b: tf.Tensor) =>
      tf.fused.conv2d({
        x: a as tf.Tensor4D,
        filter: b as tf.Tensor4D,
        strides: s,
        pad: 'same',
        bias,
        activation: 'relu',
      });
    return [
      conv(xt, ft),
      ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(conv(a, b))))([xt, ft]),
    ];
  }

  /** The same on the cpu backend (the reference every fast kernel is tested against). */
  async function convOnCpu(c: (typeof convCases)[number]): Promise<Float32Array[]> {
    await tf.setBackend('cpu');
    try {
      return tf.tidy(() => convResults(c).map((t) => t.dataSync() as Float32Array));
    } finally {
      await tf.setBackend('wasm');
    }
  }

  it.each(convCases)('$name: the same output and gradients, bit for bit (128-bit kernels)', (c) => {
    const was = setWide(false);
    try {
      const [wasm, native] = bothEngines(() => convResults(c));
      native.forEach((v, i) => expect(v).toEqual(wasm[i]));
    } finally {
      setWide(was);
    }
  });

  it.each(convCases)('$name: within float32 rounding with the wide kernels', async (c) => {
    setWide(true);
    const [wasm, native] = bothEngines(() => convResults(c));
    const cpu = await convOnCpu(c);
    native.forEach((v, i) => {
      // As accurate as the wasm kernels: within the fast kernels' bound of the reference, or
      // within a quarter more than the wasm kernels' own error where that is larger (the
      // input gradient summed over 32 channels here: 1.7e-5 in wasm, 1.2e-5 wide).
      const wasmError = relativeError(wasm[i]!, cpu[i]!);
      expect(relativeError(v, cpu[i]!)).toBeLessThanOrEqual(
        Math.max(WIDE_TOLERANCE, 1.25 * wasmError),
      );
    });
  });

  const depthwiseCases = [
    { name: 'depthwise 3x3, 16 channels, stride 1', x: [2, 9, 7, 16], s: 1 },
    { name: 'depthwise 3x3, 32 channels, stride 2', x: [3, 10, 11, 32], s: 2 },
  ] as const;

  /** A depthwise conv's output (bias, ReLU) and its gradients with respect to x and the filter. */
  function depthwiseResults({ x, s }: (typeof depthwiseCases)[number]): tf.Tensor[] {
    const c = x[3];
    const xt = tf.tensor4d(
      randomValues(
        x.reduce((p, d) => p * d, 1),
        14,
      ),
      [...x],
    );
    const ft = tf.tensor4d(randomValues(9 * c, 15), [3, 3, c, 1]);
    const bias = tf.tensor1d(randomValues(c, 16));
    const conv = (a: tf.Tensor, b: tf.Tensor) =>
      tf.fused.depthwiseConv2d({
        x: a as tf.Tensor4D,
        filter: b as tf.Tensor4D,
        strides: s,
        pad: 'same',
        bias,
        activation: 'relu',
      });
    return [
      conv(xt, ft),
      ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(conv(a, b))))([xt, ft]),
    ];
  }

  it.each(depthwiseCases)(
    '$name: bit for bit with the 128-bit kernels, to rounding wide',
    async (c) => {
      const was = setWide(false);
      const [wasm, native] = bothEngines(() => depthwiseResults(c));
      native.forEach((v, i) => expect(v).toEqual(wasm[i]));
      setWide(true);
      const [, wide] = bothEngines(() => depthwiseResults(c));
      setWide(was);
      await tf.setBackend('cpu');
      const cpu = tf.tidy(() => depthwiseResults(c).map((t) => t.dataSync() as Float32Array));
      await tf.setBackend('wasm');
      wide.forEach((v, i) => expect(relativeError(v, cpu[i]!)).toBeLessThanOrEqual(WIDE_TOLERANCE));
    },
  );

  it('gives the same bits for depthwise convolutions, batch norm, ReLU6 and Adam over training steps', async () => {
    const losses = async (): Promise<{ loss: number[]; weights: Float32Array[] }> => {
      const model = buildMobileNetLike({
        seed: 5,
        inputShape: [12, 12, 1],
        stemFilters: 8,
        blocks: [
          { filters: 16, strides: 1 },
          { filters: 32, strides: 2 },
        ],
      });
      model.compile({ optimizer: createAdam(1e-3), loss: 'categoricalCrossentropy' });
      const x = tf.tensor4d(
        randomValues(4 * 144, 21).map((v) => (v + 1) / 2),
        [4, 12, 12, 1],
      );
      const y = tf.oneHot(tf.tensor1d([1, 3, 5, 7], 'int32'), 10);
      const loss: number[] = [];
      for (let s = 0; s < 3; s++) loss.push((await model.trainOnBatch(x, y)) as number);
      const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
      tf.dispose([x, y]);
      model.dispose();
      return { loss, weights };
    };
    allowNativeKernels(false);
    const wasm = await losses();
    allowNativeKernels(true);
    const was = setWide(false);
    const native = await losses();
    setWide(true);
    const wide = await losses();
    setWide(was);
    expect(native.loss).toEqual(wasm.loss);
    native.weights.forEach((w, i) => expect(w).toEqual(wasm.weights[i]));
    // The wide pointwise kernels (16 into 32 channels here) sum in another order.
    wide.loss.forEach((l, i) =>
      expect(Math.abs(l - wasm.loss[i]!)).toBeLessThan(1e-5 * Math.abs(wasm.loss[i]!)),
    );
    wide.weights.forEach((w, i) =>
      expect(relativeError(w, wasm.weights[i]!)).toBeLessThanOrEqual(1e-4),
    );
  });

  it('runs pointwise convolutions on the wide kernels where the CPU has them', () => {
    const backend = tf.backend();
    if (!isWasmBackend(backend)) throw new Error('wasm backend expected');
    const kernels = heapKernels(backend)!;
    const lanes = kernels.wideLanes();
    expect(lanes).toBe(nativeKernels()!.wideLanes);
    const g = {
      batch: 2,
      inHeight: 3,
      inWidth: 5,
      inChannels: 16,
      filterHeight: 1,
      filterWidth: 1,
      outChannels: 32,
      strideHeight: 1,
      strideWidth: 1,
      padTop: 0,
      padLeft: 0,
      outHeight: 3,
      outWidth: 5,
    };
    expect(kernels.pointwiseFits(g)).toBe(lanes > 0);
    expect(kernels.pointwiseFits({ ...g, inChannels: 8 })).toBe(false);
    expect(kernels.pointwiseFits({ ...g, strideHeight: 2 })).toBe(false);
    if (lanes === 0) return;
    const x = tf.tensor2d(randomValues(30 * 16, 51), [30, 16]);
    const w = tf.tensor2d(randomValues(16 * 32, 52), [16, 32]);
    const y = tf.zeros([30, 32]);
    kernels.pointwiseConv(
      g,
      heapOffset(backend, x),
      heapOffset(backend, w),
      0,
      false,
      heapOffset(backend, y),
    );
    const expected = tf.matMul(x, w);
    expect(
      relativeError(y.dataSync() as Float32Array, expected.dataSync() as Float32Array),
    ).toBeLessThan(1e-6);
    setWide(false);
    expect(kernels.pointwiseFits(g)).toBe(false);
    expect(() => kernels.pointwiseConv(g, 0, 0, 0, false, 0)).toThrow(RangeError);
    setWide(true);
    tf.dispose([x, w, y, expected]);
  });

  it('runs strided convolutions on the wide im2col products where the CPU has them', () => {
    const backend = tf.backend();
    if (!isWasmBackend(backend)) throw new Error('wasm backend expected');
    const kernels = heapKernels(backend);
    if (kernels === undefined) throw new Error('heap kernels expected');
    const lanes = kernels.wideLanes();
    const g = {
      batch: 1,
      inHeight: 4,
      inWidth: 4,
      inChannels: 3,
      filterHeight: 3,
      filterWidth: 3,
      outChannels: 16,
      strideHeight: 2,
      strideWidth: 2,
      padTop: 0,
      padLeft: 0,
      outHeight: 1,
      outWidth: 1,
    };
    expect(kernels.convGemmFits(g, 'forward')).toBe(lanes > 0);
    expect(kernels.convGemmFits({ ...g, outChannels: 12 }, 'forward')).toBe(false);
    expect(kernels.convGemmFits({ ...g, outChannels: 12 }, 'input-grad')).toBe(lanes > 0);
    if (lanes > 0) {
      // One output pixel: y = Σ over the 3×3×3 window of x·w, the window's top-left 3×3 of 4×4.
      const x = tf.tensor4d(randomValues(48, 21), [1, 4, 4, 3]);
      const w = tf.tensor4d(randomValues(27 * 16, 22), [3, 3, 3, 16]);
      const y = backend.makeOutput([1, 1, 1, 16], 'float32');
      kernels.convGemm(
        g,
        heapOffset(backend, x),
        heapOffset(backend, w),
        0,
        false,
        heapOffset(backend, y),
      );
      const got = tf.engine().makeTensorFromTensorInfo(y);
      const want = tf.tidy(() => tf.conv2d(x, w, 2, 'valid'));
      expect(
        relativeError(got.dataSync() as Float32Array, want.dataSync() as Float32Array),
      ).toBeLessThan(WIDE_TOLERANCE);
      tf.dispose([x, w, got, want]);
    }
    setWide(false);
    expect(kernels.convGemmFits(g, 'forward')).toBe(false);
    expect(() => kernels.convGemm(g, 0, 0, 0, false, 0)).toThrow(RangeError);
    setWide(true);
  });

  it('keeps ResNet-20 training on the wasm kernels’ loss curve', async () => {
    const run = async (): Promise<number[]> => {
      const model = buildResNet20({ seed: 2 });
      model.compile({ optimizer: createAdam(1e-3), loss: 'categoricalCrossentropy' });
      const x = tf.tensor4d(randomValues(4 * 32 * 32 * 3, 31), [4, 32, 32, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 2, 4, 6], 'int32'), 10);
      const out: number[] = [];
      for (let s = 0; s < 3; s++) out.push((await model.trainOnBatch(x, y)) as number);
      tf.dispose([x, y]);
      model.dispose();
      return out;
    };
    allowNativeKernels(false);
    const wasm = await run();
    allowNativeKernels(true);
    const was = setWide(false);
    const narrow = await run();
    setWide(true);
    const wide = await run();
    setWide(was);
    // The same C and no contraction: the same bits, so the same losses.
    expect(narrow).toEqual(wasm);
    // The wide kernels sum in another order: the same curve to float32 rounding.
    expect(wide).toHaveLength(3);
    // (Each is within about 1e-5 of the cpu backend's loss, so within 2e-5 of each other.)
    wide.forEach((l, i) => expect(Math.abs(l - wasm[i]!)).toBeLessThan(2e-5 * Math.abs(wasm[i]!)));
    expect(wide[2]).toBeLessThan(wide[0]!);
  });

  it('takes the heap’s address afresh on every call, after the memory grew', () => {
    const backend = tf.backend();
    if (!isWasmBackend(backend)) throw new Error('wasm backend expected');
    const kernels = heapKernels(backend)!;
    const x = tf.tensor2d(randomValues(64 * 8, 41), [64, 8]);
    const first = tf.sum(x, 0).dataSync();
    const memory = (backend.wasm as unknown as { asm: { memory: { buffer: ArrayBuffer } } }).asm
      .memory;
    const bytesBefore = memory.buffer.byteLength;
    // 256 MB more than the heap holds now makes it grow (and detach the old buffer).
    const big = tf.zeros([Math.ceil(bytesBefore / 4) + (64 << 20)]);
    expect(memory.buffer.byteLength).toBeGreaterThan(bytesBefore);
    expect(tf.sum(x, 0).dataSync()).toEqual(first);
    expect(kernels.countNonzero(heapOffset(backend, big), 1000)).toBe(0);
    tf.dispose([x, big]);
  });

  it('refuses a call without the heap or with an offset past its end', () => {
    const addon = nativeKernels()!;
    const count = addon.count_nonzero as (...args: unknown[]) => number;
    expect(() => count(new Float32Array(4), 0, 1)).toThrow(/ArrayBuffer/);
    expect(() => count(new ArrayBuffer(16), 64, 1)).toThrow(/outside the heap/);
    expect(() => count(new ArrayBuffer(16), 0)).toThrow(/number of arguments/);
    const heap = new Float32Array([0, 1, 0, 2]);
    expect(count(heap.buffer, 4, 3)).toBe(2);
  });
});

describe('the kernels’ engine', () => {
  it('is wasm, with the reason in the start-up log, when CNN_CLASSROOM_KERNELS=wasm', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kernels-engine-'));
    try {
      const script = path.join(dir, 'start.mts');
      const backend = pathToFileURL(path.join(PROJECT_ROOT, 'src', 'ml', 'backend.ts')).href;
      writeFileSync(
        script,
        `import { initBackend } from '${backend}';\nawait initBackend({ prefer: 'wasm' });\n`,
      );
      const r = spawnSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [script], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { ...process.env, CNN_CLASSROOM_KERNELS: 'wasm', LOG_LEVEL: 'info', VITEST: '' },
      });
      expect(r.status).toBe(0);
      const line = r.stderr
        .split('\n')
        .filter((l) => l.includes('TF.js backend ready'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
      expect(line).toMatchObject({
        backend: 'wasm',
        kernels: 'wasm',
        kernelsReason: 'CNN_CLASSROOM_KERNELS=wasm',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
