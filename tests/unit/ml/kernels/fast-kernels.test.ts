import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { gemmWins } from '../../../../src/ml/kernels/fast-matmul.ts';
import { HeapKernels } from '../../../../src/ml/kernels/heap-kernels.ts';
import { WasmGemm, wasmGemm } from '../../../../src/ml/kernels/wasm-gemm.ts';
import { onBothBackends, randomValues, relativeError } from './reference.ts';

/**
 * Bound on float32 results against a float64 (GEMM) or cpu-backend (kernels) reference:
 * `|c − ref| ≤ TOLERANCE · Σ_p |a_ip·b_pj|` element by element for the GEMM (the classical
 * forward error bound of a dot product, k·u with u = 6e-8, is 3e-5 for k = 513; blocked sums sit
 * far below it), and max|c − ref| / max|ref| for whole kernels.
 */
const TOLERANCE = 1e-5;

/** Number of elements of a shape. */
function count(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  registerConvGradientKernels();
  await tf.setBackend('wasm');
});

afterAll(async () => {
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

describe('WasmGemm', () => {
  const SIZES = [
    [1, 1, 1],
    [7, 9, 5],
    [131, 77, 300], // past the 120-row and 256-deep blocks, ragged register tiles
    [13, 2051, 3], // past the 2048-column block
    [125, 17, 513],
  ] as const;
  const FORMS = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const;
  const cases = SIZES.flatMap(([m, n, k]) => FORMS.map(([tA, tB]) => ({ m, n, k, tA, tB })));

  it.each(cases)(
    'multiplies $m×$k by $k×$n (transposeA $tA, transposeB $tB) within the float32 error bound',
    ({ m, n, k, tA, tB }) => {
      const a = randomValues(m * k, 1);
      const b = randomValues(k * n, 2);
      const c0 = randomValues(m * n, 3);
      const [rsA, csA] = tA ? [1, m] : [k, 1];
      const [rsB, csB] = tB ? [1, k] : [n, 1];
      const g = wasmGemm();

      for (const accumulate of [false, true]) {
        const [offA = 0, offB = 0, offC = 0] = g.reserve([a.length, b.length, m * n]);
        g.view(offA, a.length).set(a);
        g.view(offB, b.length).set(b);
        g.view(offC, m * n).set(c0);
        g.gemm(m, n, k, offA, [rsA, csA], offB, [rsB, csB], offC, accumulate);
        const c = g.view(offC, m * n);

        // The worst element's error in units of its bound (one expect: 26k would be slow).
        let worst = 0;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = accumulate ? c0[i * n + j]! : 0;
            let mag = Math.abs(sum);
            for (let p = 0; p < k; p++) {
              const term = a[i * rsA + p * csA]! * b[p * rsB + j * csB]!;
              sum += term;
              mag += Math.abs(term);
            }
            worst = Math.max(worst, Math.abs(c[i * n + j]! - sum) / (TOLERANCE * mag + 1e-30));
          }
        }
        expect(worst).toBeLessThanOrEqual(1);
      }
    },
  );

  it('writes zeros for an empty inner dimension', () => {
    const g = wasmGemm();
    const [offA = 0, offB = 0, offC = 0] = g.reserve([0, 0, 6]);
    g.view(offC, 6).fill(7);
    g.gemm(2, 3, 0, offA, [0, 1], offB, [3, 1], offC, false);
    expect([...g.view(offC, 6)]).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('GEMM-backed BatchMatMul and _FusedMatMul on wasm', () => {
  const PRODUCTS = [
    { a: [37, 41], b: [29, 41], tA: false, tB: true },
    { a: [41, 37], b: [29, 41], tA: true, tB: true },
    { a: [3, 37, 41], b: [3, 29, 41], tA: false, tB: true }, // batched
    { a: [3, 37, 41], b: [1, 29, 41], tA: false, tB: true }, // one b for every a
    { a: [256, 256], b: [256, 257], tA: false, tB: false }, // large enough to take the GEMM
  ];

  it('takes the products the tests below exercise', () => {
    expect(gemmWins(37 * 41 * 29, false, true)).toBe(true);
    expect(gemmWins(256 * 256 * 257, false, false)).toBe(true);
    expect(gemmWins(256 * 256 * 257, true, false)).toBe(false);
  });

  it.each(PRODUCTS)(
    'matches the cpu backend: a $a, b $b, transposeA $tA, transposeB $tB',
    async ({ a, b, tA, tB }) => {
      const sizeA = count(a);
      const sizeB = count(b);
      const [[actual], [expected]] = await onBothBackends(() => [
        tf.matMul(
          tf.tensor(randomValues(sizeA, 4), a),
          tf.tensor(randomValues(sizeB, 5), b),
          tA,
          tB,
        ),
      ]);
      expect(relativeError(actual!, expected!)).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it.each([
    { bias: [29], activation: 'relu' },
    { bias: [1, 29], activation: 'linear' },
    { bias: [29], activation: 'elu' }, // left to the backend's kernel, given b transposed
    { bias: undefined, activation: 'relu' },
  ] as const)(
    'matches the cpu backend with bias $bias and activation $activation',
    async ({ bias, activation }) => {
      const [[actual], [expected]] = await onBothBackends(() => [
        tf.fused.matMul({
          a: tf.tensor(randomValues(37 * 41, 6), [37, 41]),
          b: tf.tensor(randomValues(29 * 41, 7), [29, 41]),
          transposeB: true,
          ...(bias !== undefined && {
            bias: tf.tensor(randomValues(count(bias), 8), [...bias]),
          }),
          activation,
        }),
      ]);
      expect(relativeError(actual!, expected!)).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it.each([
    [5, 7, 29],
    [3, 4, 2],
  ])(
    'adds the bias right on small transposeB products (%i×%i·%i×…, wasm’s own kernel does not)',
    async (m, k, n) => {
      const [[actual], [expected]] = await onBothBackends(() => [
        tf.fused.matMul({
          a: tf.tensor(randomValues(m * k, 15), [m, k]),
          b: tf.tensor(randomValues(n * k, 16), [n, k]),
          transposeB: true,
          bias: tf.tensor(randomValues(n, 17), [n]),
          activation: 'sigmoid',
        }),
      ]);
      expect(relativeError(actual!, expected!)).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it('gives a dense layer the cpu backend’s gradients', async () => {
    const [actual, expected] = await onBothBackends(() =>
      tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.sin(tf.relu(tf.matMul(x, w)))))([
        tf.tensor2d(randomValues(64 * 300, 9), [64, 300]),
        tf.tensor2d(randomValues(300 * 70, 10), [300, 70]),
      ]),
    );
    actual.forEach((g, i) => expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE));
  });
});

describe('GEMM-backed conv gradients on wasm', () => {
  const CASES = [
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, pad: 'same' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 2, pad: 'same' },
    { x: [2, 10, 10, 4], f: [1, 1, 4, 6], s: 2, pad: 'valid' },
    { x: [3, 12, 9, 3], f: [5, 4, 3, 4], s: 3, pad: 'valid' },
    { x: [1, 8, 8, 6], f: [3, 3, 6, 2], s: 2, pad: 1 },
    // One input channel at stride 1: the in-place direct filter gradient (heap-kernels.c).
    { x: [3, 28, 28, 1], f: [5, 5, 1, 6], s: 1, pad: 'valid' },
    { x: [2, 9, 7, 1], f: [3, 4, 1, 5], s: 1, pad: 'same' },
    { x: [2, 6, 6, 1], f: [3, 3, 1, 4], s: 1, pad: 2 },
    // Narrow unpadded 5×5 filter rows (5·6 = 30 floats): the in-place input-gradient scatter.
    { x: [3, 12, 12, 6], f: [5, 5, 6, 16], s: 1, pad: 'valid' },
    { x: [2, 9, 8, 5], f: [5, 6, 5, 3], s: 1, pad: 'valid' },
  ] as const;

  it.each(CASES)(
    'gives conv2d x $x, filter $f, stride $s, pad $pad the cpu backend’s gradients',
    async ({ x, f, s, pad }) => {
      const [actual, expected] = await onBothBackends(() =>
        tf.grads((xt: tf.Tensor, ft: tf.Tensor) =>
          tf.sum(tf.sin(tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, s, pad))),
        )([
          tf.tensor4d(randomValues(count(x), 11), [...x]),
          tf.tensor4d(randomValues(count(f), 12), [...f]),
        ]),
      );
      actual.forEach((g, i) =>
        expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE),
      );
    },
  );

  it('scatters LeNet conv2’s input gradient, zeros behind ReLU and pooling skipped, as the cpu backend', async () => {
    const narrow = vi.spyOn(HeapKernels.prototype, 'conv2dInputGradNarrow');
    const [actual, expected] = await onBothBackends(() =>
      tf.grads((xt: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.maxPool(
              tf.relu(
                tf.conv2d(
                  xt as tf.Tensor4D,
                  tf.tensor4d(randomValues(2400, 71), [5, 5, 6, 16]),
                  1,
                  'valid',
                ),
              ),
              2,
              2,
              'valid',
            ),
            tf.tensor1d(randomValues(16, 73)),
          ),
        ),
      )([tf.tensor4d(randomValues(4 * 12 * 12 * 6, 79), [4, 12, 12, 6])]),
    );
    expect(narrow).toHaveBeenCalledTimes(1);
    narrow.mockRestore();
    // Most of dy is zero here, so most of dx's terms were skipped; dx is still the full gradient.
    expect(actual[0]!.filter((v) => v !== 0).length).toBeGreaterThan(actual[0]!.length / 2);
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each([
    { x: [4, 12, 12, 6], f: [5, 5, 6, 16], s: 1, pad: 'valid' },
    { x: [3, 28, 28, 1], f: [5, 5, 1, 6], s: 2, pad: 'valid' }, // at stride 1: the dense kernel
    { x: [2, 11, 9, 3], f: [3, 3, 3, 4], s: 2, pad: 'same' }, // borders, stride 2
  ] as const)(
    'scatters the filter gradient of $x by $f over a mostly-zero dy as the cpu backend',
    async ({ x, f, s, pad }) => {
      const scatter = vi.spyOn(HeapKernels.prototype, 'conv2dFilterGradScatter');
      const [actual, expected] = await onBothBackends(() => {
        const xt = tf.tensor4d(randomValues(count(x), 83), [...x]);
        const dyShape = tf.conv2d(xt, tf.zeros<tf.Rank.R4>([...f]), s, pad).shape;
        // One entry in ten nonzero, as behind ReLU and 2×2 max pooling.
        const keep = tf.cast(
          tf.greater(tf.tensor(randomValues(count(dyShape), 89), dyShape), 0.8),
          'float32',
        );
        const dy = tf.mul(tf.tensor(randomValues(count(dyShape), 97), dyShape), keep);
        return [
          tf
            .engine()
            .runKernel<tf.Tensor>(
              tf.Conv2DBackpropFilter,
              { x: xt, dy },
              { filterShape: [...f], strides: [s, s], pad, dataFormat: 'NHWC' },
            ),
        ];
      });
      expect(scatter).toHaveBeenCalledTimes(1);
      scatter.mockRestore();
      expect(relativeError(actual[0]!, expected[0]!)).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it('carries a NaN in x or an infinite filter weight into the gradients as the cpu backend, zeros in dy notwithstanding', async () => {
    const nans = (a: Float32Array) => a.filter((v) => Number.isNaN(v)).length;
    const [actual, expected] = await onBothBackends(() => {
      const xValues = randomValues(2 * 12 * 12 * 6, 107);
      xValues[100] = NaN;
      const wValues = randomValues(2400, 109);
      wValues[7] = Infinity;
      const x = tf.tensor4d(xValues, [2, 12, 12, 6]);
      const w = tf.tensor4d(wValues, [5, 5, 6, 16]);
      // dy with two nonzero entries: the sparse paths would skip the rest.
      const dyValues = new Float32Array(2 * 8 * 8 * 16);
      dyValues[5] = 1;
      dyValues[900] = -2;
      const dy = tf.tensor4d(dyValues, [2, 8, 8, 16]);
      const attrs = { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC' };
      return [
        tf
          .engine()
          .runKernel<tf.Tensor>(
            tf.Conv2DBackpropFilter,
            { x, dy },
            { ...attrs, filterShape: [5, 5, 6, 16] },
          ),
        tf
          .engine()
          .runKernel<tf.Tensor>(
            tf.Conv2DBackpropInput,
            { dy, filter: w },
            { ...attrs, inputShape: [2, 12, 12, 6] },
          ),
      ];
    });
    // Every NaN of the reference is one here (the input gradient's composite, which convolves a
    // zero-padded dy, multiplies the infinite weight by more zeros than the cpu backend and has
    // more NaNs: 288 against 128).
    for (const i of [0, 1]) {
      expected[i]!.forEach((v, j) => {
        if (Number.isNaN(v)) expect(actual[i]![j]).toBeNaN();
      });
      expect(nans(expected[i]!)).toBeGreaterThan(100);
    }
    expect(nans(actual[0]!)).toBe(nans(expected[0]!));
  });

  it('refuses a dy whose shape does not fit the convolution instead of reading past it', () => {
    const dy = tf.zeros([1, 3, 3, 16]);
    const w = tf.zeros([5, 5, 6, 16]);
    const x = tf.zeros([1, 12, 12, 6]);
    const attrs = { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC' };
    expect(() =>
      tf
        .engine()
        .runKernel(
          tf.Conv2DBackpropInput,
          { dy, filter: w },
          { ...attrs, inputShape: [1, 12, 12, 6] },
        ),
    ).toThrow(/dy has shape \[1, 3, 3, 16\], expected \[1, 8, 8, 16\]/);
    expect(() =>
      tf
        .engine()
        .runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: [5, 5, 6, 16] }),
    ).toThrow(/dy has shape/);
    tf.dispose([dy, w, x]);
  });

  it('keeps a convolution’s training step from leaking tensors', () => {
    const x = tf.tensor4d(randomValues(4 * 16 * 16 * 3, 13), [4, 16, 16, 3]);
    const w = tf.variable(tf.tensor4d(randomValues(3 * 3 * 3 * 8, 14), [3, 3, 3, 8]));
    const optimizer = tf.train.sgd(0.01);
    const step = () => optimizer.minimize(() => tf.sum(tf.square(tf.conv2d(x, w, 2, 'same'))));
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose([x, w]);
  });
});

/** The ids of a WebAssembly binary's sections, in order (WebAssembly core spec, 5.5.2). */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let at = 8; // magic and version
  while (at < bytes.length) {
    const id = bytes[at++]!;
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++]!;
      size |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
    }
    ids.push(id);
    at += size;
  }
  return ids;
}

/** WebAssembly's module reflection (tsconfig's libs leave the JS API undeclared). */
interface WasmModuleApi {
  Module: {
    new (bytes: Uint8Array): object;
    imports(m: object): { module: string; name: string; kind: string }[];
    exports(m: object): { name: string; kind: string }[];
  };
}

describe('committed gemm.wasm', () => {
  const root = path.resolve(import.meta.dirname, '../../../..');
  let clang = '';
  try {
    clang = execFileSync('clang', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  } catch {
    // no clang here: only the committed binary is checked
  }
  const builtWith = readFileSync(path.join(root, 'wasm/BUILT_WITH'), 'utf8').trim();

  it('is a module with the entry points the kernels call', () => {
    const g = new WasmGemm(readFileSync(path.join(root, 'src/ml/kernels/gemm.wasm')));
    expect(g.reserve([4]).length).toBe(1);
  });

  it.skipIf(clang !== builtWith)(`is what scripts/build-wasm.sh builds with ${builtWith}`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gemm-'));
    try {
      execFileSync(path.join(root, 'scripts/build-wasm.sh'), [dir]);
      for (const name of ['gemm.wasm', 'heap-kernels.wasm']) {
        expect(
          readFileSync(path.join(dir, name)).equals(
            readFileSync(path.join(root, 'src/ml/kernels', name)),
          ),
          name,
        ).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has an in-place module that imports the memory it works on and owns none', () => {
    const { Module } = (globalThis as unknown as { WebAssembly: WasmModuleApi }).WebAssembly;
    const bytes = readFileSync(path.join(root, 'src/ml/kernels/heap-kernels.wasm'));
    // No data or data-count section: instantiating it must not write into the backend's heap.
    // (Its code never touching the stack pointer is checked by scripts/build-wasm.sh, whose
    // output the byte-comparison test above holds the committed file to.)
    expect(sectionIds(bytes)).not.toContain(11);
    expect(sectionIds(bytes)).not.toContain(12);
    expect(sectionIds(bytes)).toContain(10); // the parse reached the code
    const module = new Module(bytes);
    expect(Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(Module.exports(module).map((e) => e.name)).toEqual([
      'sum_rows',
      'moments_rows',
      'broadcast_rows',
      'normalize_rows',
      'batch_norm_grad',
      'batch_norm_sums',
      'batch_norm_train_dx',
      'max_pool_grad',
      'conv2d_filter_grad_c1',
      'conv2d_direct',
      'adam_update',
      'conv2d_input_grad_narrow',
      'count_nonzero',
      'conv2d_filter_grad_scatter',
      'all_finite',
      'clip_grad',
      'relu_grad',
      'relu_clip_grad',
      'winograd_filter',
      'winograd_conv3x3',
      'winograd_filter_grad3x3',
      'depthwise_conv2d',
      'depthwise_conv2d_input_grad',
      'depthwise_conv2d_filter_grad',
    ]);
  });
});

describe('direct convolution of few channels on wasm', () => {
  it.each([
    { x: [3, 28, 28, 1], f: [5, 5, 1, 6], pad: 'valid', activation: 'relu' }, // LeNet's conv1
    { x: [2, 12, 12, 6], f: [5, 5, 6, 16], pad: 'valid', activation: 'relu' }, // LeNet's conv2
    { x: [2, 9, 7, 1], f: [3, 4, 1, 11], pad: 'same', activation: 'linear' }, // a group of 8 and 3
    { x: [2, 7, 9, 3], f: [3, 3, 3, 16], pad: 'same', activation: 'relu' }, // ResNet-20's first
    { x: [1, 6, 5, 5], f: [3, 2, 5, 7], pad: 2, activation: 'linear' },
  ] as const)(
    'gives x $x, filter $f, pad $pad, $activation the cpu backend’s output and gradients',
    async ({ x, f, pad, activation }) => {
      const direct = vi.spyOn(HeapKernels.prototype, 'conv2dDirect');
      const [actual, expected] = await onBothBackends(() => {
        const xt = tf.tensor4d(randomValues(count(x), 51), [...x]);
        const ft = tf.tensor4d(randomValues(count(f), 52), [...f]);
        const bias = tf.tensor1d(randomValues(f[3], 53));
        const conv = (a: tf.Tensor, b: tf.Tensor) =>
          tf.fused.conv2d({
            x: a as tf.Tensor4D,
            filter: b as tf.Tensor4D,
            strides: 1,
            pad,
            bias,
            activation,
          });
        return [
          conv(xt, ft),
          ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(conv(a, b))))([xt, ft]),
        ];
      });
      // The forward pass, its replay under tf.grads and, for some, the input gradient's composite.
      expect(direct.mock.calls.length).toBeGreaterThanOrEqual(2);
      vi.restoreAllMocks();
      expect(actual[0]!.some((v) => v === 0)).toBe(activation === 'relu');
      actual.forEach((g, i) =>
        expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE),
      );
    },
  );
});

describe('Winograd F(4×4, 3×3) convolutions on wasm', () => {
  const spies = () => [
    vi.spyOn(HeapKernels.prototype, 'winogradConv3x3'),
    vi.spyOn(HeapKernels.prototype, 'winogradInputGrad3x3'),
    vi.spyOn(HeapKernels.prototype, 'winogradFilterGrad3x3'),
  ];

  it.each([
    { x: [2, 9, 7, 8], f: [3, 3, 8, 8], pad: 'same' }, // partial 4×4 tiles on both axes
    { x: [3, 10, 11, 16], f: [3, 3, 16, 24], pad: 'valid' },
    { x: [1, 6, 13, 8], f: [3, 3, 8, 16], pad: 2 },
    { x: [25, 4, 4, 8], f: [3, 3, 8, 16], pad: 'same' }, // 25 tiles: a block of 24 and one more
  ] as const)(
    'gives conv2d x $x, filter $f, pad $pad the cpu backend’s output and gradients',
    async ({ x, f, pad }) => {
      const [forward, inputGrad, filterGrad] = spies();
      const [actual, expected] = await onBothBackends(() => {
        const xt = tf.tensor4d(randomValues(count(x), 31), [...x]);
        const ft = tf.tensor4d(randomValues(count(f), 32), [...f]);
        const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.sin(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad))),
        )([xt, ft]);
        return [tf.conv2d(xt, ft, 1, pad), ...grads];
      });
      expect(forward).toHaveBeenCalled();
      expect(inputGrad).toHaveBeenCalled();
      expect(filterGrad).toHaveBeenCalled();
      vi.restoreAllMocks();
      expect(actual[0]!.length).toBe(expected[0]!.length);
      actual.forEach((g, i) =>
        expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE),
      );
    },
  );

  it.each(['relu', 'linear'] as const)(
    'applies a fused conv’s bias and %s activation as the cpu backend',
    async (activation) => {
      const [forward] = spies();
      const [[actual], [expected]] = await onBothBackends(() => [
        tf.fused.conv2d({
          x: tf.tensor4d(randomValues(2 * 8 * 8 * 8, 33), [2, 8, 8, 8]),
          filter: tf.tensor4d(randomValues(9 * 8 * 16, 34), [3, 3, 8, 16]),
          strides: 1,
          pad: 'same',
          bias: tf.tensor1d(randomValues(16, 35)),
          activation,
        }),
      ]);
      expect(forward).toHaveBeenCalledTimes(1);
      vi.restoreAllMocks();
      expect(relativeError(actual!, expected!)).toBeLessThanOrEqual(TOLERANCE);
      expect(actual!.some((v) => v === 0)).toBe(activation === 'relu');
    },
  );

  it('leaves strided, narrow, 5×5, PReLU, 2×2-map and over-64-channel convolutions to the other kernels', async () => {
    const [forward, inputGrad, filterGrad] = spies();
    const [actual, expected] = await onBothBackends(() => {
      const x = tf.tensor4d(randomValues(2 * 8 * 8 * 8, 36), [2, 8, 8, 8]);
      const w = tf.tensor4d(randomValues(9 * 8 * 8, 37), [3, 3, 8, 8]);
      const narrow = tf.tensor4d(randomValues(9 * 8 * 4, 38), [3, 3, 8, 4]);
      const wide = tf.tensor4d(randomValues(25 * 8 * 8, 39), [5, 5, 8, 8]);
      const small = tf.tensor4d(randomValues(2 * 2 * 2 * 8, 46), [2, 2, 2, 8]);
      const deep = tf.tensor4d(randomValues(2 * 4 * 4 * 72, 47), [2, 4, 4, 72]);
      const deepFilter = tf.tensor4d(randomValues(9 * 72 * 8, 48), [3, 3, 72, 8]);
      return [
        tf.conv2d(small, w, 1, 'same'), // a quarter of its one 4×4 tile used
        tf.conv2d(deep, deepFilter, 1, 'same'), // 72 input channels summed
        tf.conv2d(x, w, 2, 'same'),
        tf.conv2d(x, narrow, 1, 'same'),
        tf.conv2d(x, wide, 1, 'same'),
        tf.fused.conv2d({
          x,
          filter: w,
          strides: 1,
          pad: 'same',
          activation: 'prelu',
          preluActivationWeights: tf.scalar(0.2),
        }),
        ...tf.grads((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, w, 2, 'same')))([x]),
      ];
    });
    for (const spy of [forward, inputGrad, filterGrad]) expect(spy).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    actual.forEach((g, i) => expect(relativeError(g, expected[i]!)).toBeLessThanOrEqual(TOLERANCE));
  });

  it('leaves a NaN or infinite operand to XNNPACK and the composite, which confine it as the cpu backend', async () => {
    const [forward, inputGrad] = spies();
    const [actual, expected] = await onBothBackends(() => {
      const xValues = randomValues(2 * 8 * 8 * 8, 40);
      xValues[77] = NaN;
      const wValues = randomValues(9 * 8 * 8, 41);
      wValues[3] = Infinity;
      const x = tf.tensor4d(xValues, [2, 8, 8, 8]);
      const w = tf.tensor4d(randomValues(9 * 8 * 8, 42), [3, 3, 8, 8]);
      const dy = tf.tensor4d(randomValues(2 * 8 * 8 * 8, 43), [2, 8, 8, 8]);
      return [
        tf.conv2d(x, w, 1, 'same'),
        tf.conv2dTranspose(dy, tf.tensor4d(wValues, [3, 3, 8, 8]), [2, 8, 8, 8], 1, 'same'),
      ];
    });
    expect(forward).not.toHaveBeenCalled();
    expect(inputGrad).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    const nonFinite = (a: Float32Array) => a.filter((v) => !Number.isFinite(v)).length;
    // The forward conv (XNNPACK) matches exactly; the input gradient's composite keeps every
    // non-finite value of the reference and adds some from its zero border (see above).
    expect(nonFinite(actual[0]!)).toBe(nonFinite(expected[0]!));
    for (const i of [0, 1]) {
      expected[i]!.forEach((v, j) => {
        if (!Number.isFinite(v)) expect(Number.isFinite(actual[i]![j])).toBe(false);
      });
      expect(nonFinite(expected[i]!)).toBeGreaterThan(0);
      expect(nonFinite(actual[i]!)).toBeLessThan(actual[i]!.length / 4);
    }
  });

  it('keeps ResNet-20-shaped training steps from leaking tensors', () => {
    const x = tf.tensor4d(randomValues(4 * 8 * 8 * 16, 44), [4, 8, 8, 16]);
    const w = tf.variable(tf.tensor4d(randomValues(9 * 16 * 16, 45), [3, 3, 16, 16]));
    const b = tf.variable(tf.zeros([16]));
    const optimizer = tf.train.sgd(0.01);
    const step = () =>
      optimizer.minimize(() =>
        tf.sum(
          tf.square(
            tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' }),
          ),
        ),
      );
    const [forward, , filterGrad] = spies();
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    expect(forward).toHaveBeenCalledTimes(4);
    expect(filterGrad).toHaveBeenCalledTimes(4);
    vi.restoreAllMocks();
    optimizer.dispose();
    tf.dispose([x, w, b]);
  });
});

/** How many `copyWithin` calls on a byte array (the in-place Tile and Reverse kernels' copies) `run` makes on wasm. */
function heapCopies(run: () => tf.Tensor): number {
  const copies = vi.spyOn(Uint8Array.prototype, 'copyWithin');
  tf.tidy(() => {
    run().dataSync();
  });
  const calls = copies.mock.calls.length;
  copies.mockRestore();
  return calls;
}

describe('wasm Reverse', () => {
  it.each([
    { shape: [5, 5, 6, 16], dims: [0, 1], copies: 25 }, // the input-gradient composite's filter flip
    { shape: [3, 4, 20], dims: [1], copies: 12 },
    { shape: [2, 3, 4, 16], dims: [-2, 0], copies: 24 },
    { shape: [4, 0, 16], dims: [0], copies: 0 }, // empty
    { shape: [3, 5], dims: [1], copies: 0 }, // 4-byte elements one by one: the backend's kernel
    { shape: [4, 16], dims: [0, 0], copies: 0 }, // twice = not at all: the backend's kernel
    { shape: [2, 3, 16], dims: [1, 1, 0], copies: 0 },
  ])('reverses $shape along $dims as the cpu backend does', async ({ shape, dims, copies }) => {
    const x = () => tf.tensor(randomValues(count(shape), 21), shape);
    expect(heapCopies(() => tf.reverse(x(), dims))).toBe(copies);
    const [[actual], [expected]] = await onBothBackends(() => [tf.reverse(x(), dims)]);
    expect(actual!.length).toBe(count(shape));
    expect([...actual!]).toEqual([...expected!]);
  });
});

describe('wasm Tile and MaxPoolGrad', () => {
  it.each([
    { shape: [1, 1, 1, 5], reps: [3, 4, 2, 1], fast: true }, // batch-norm gradient form
    { shape: [1, 3, 5], reps: [4, 1, 1], fast: true },
    { shape: [3, 1, 1, 20], reps: [1, 4, 3, 1], fast: true }, // global average pooling's gradient
    { shape: [16, 1, 1, 8], reps: [1, 32, 32, 1], fast: true }, // the same, 32-byte blocks doubled
    { shape: [2, 3, 20], reps: [3, 2, 1], fast: true }, // x's slices repeated whole, two axes
    { shape: [2, 1, 17], reps: [1, 5, 2], fast: false }, // innermost axis repeated: 4-byte copies
    { shape: [1, 0, 4], reps: [3, 1, 2], fast: false }, // empty: nothing to copy
    { shape: [3, 0], reps: [0, 2], fast: false },
    { shape: [2, 3], reps: [2, 3], fast: false }, // 9 bytes per copy: the backend's kernel
  ])('tiles $shape by $reps as the cpu backend does', async ({ shape, reps, fast }) => {
    const x = () => tf.tensor(randomValues(count(shape), 18), shape);
    expect(heapCopies(() => tf.tile(x(), reps)) > 0).toBe(fast);
    const [[actual], [expected]] = await onBothBackends(() => [tf.tile(x(), reps)]);
    expect(actual!.length).toBe(count(shape.map((d, i) => d * reps[i]!)));
    expect([...actual!]).toEqual([...expected!]);
  });

  it.each([
    { x: [2, 9, 9, 3], size: 3, stride: 2, pad: 'same' },
    { x: [1, 8, 7, 2], size: 2, stride: 2, pad: 'valid' },
    { x: [2, 6, 6, 4], size: 3, stride: 1, pad: 'same' },
    { x: [3, 24, 24, 6], size: 2, stride: 2, pad: 'valid' }, // 4 SIMD lanes and a tail of 2
    { x: [2, 7, 7, 9], size: 3, stride: 2, pad: 'same' },
  ] as const)(
    'gives maxPool x $x, $size/$stride $pad the cpu backend’s gradient, negative maxima included',
    async ({ x, size, stride, pad }) => {
      const [[actual], [expected]] = await onBothBackends(() =>
        tf.grads((xt: tf.Tensor) =>
          tf.sum(tf.mul(tf.maxPool(xt as tf.Tensor4D, size, stride, pad), tf.scalar(1.5))),
        )([tf.sub(tf.tensor4d(randomValues(count(x), 19), [...x]), 0.8)]),
      );
      expect(relativeError(actual!, expected!)).toBeLessThanOrEqual(TOLERANCE);
    },
  );
});

describe('wasm MaxPoolGrad ties', () => {
  it.each([
    { x: [2, 8, 6, 6], size: 2, stride: 2 }, // the non-overlapping 2×2 path
    { x: [2, 7, 7, 5], size: 3, stride: 2 }, // the general path
  ] as const)(
    'sends a tied window’s gradient to its first maximum, as the cpu backend ($size/$stride)',
    async ({ x, size, stride }) => {
      // Values in {-1, -0.5, 0, 0.5}: most windows hold ties.
      const [[actual], [expected]] = await onBothBackends(() =>
        tf.grads((xt: tf.Tensor) =>
          tf.sum(tf.mul(tf.maxPool(xt as tf.Tensor4D, size, stride, 'valid'), tf.scalar(1.5))),
        )([tf.div(tf.floor(tf.mul(tf.tensor4d(randomValues(count(x), 101), [...x]), 2)), 2)]),
      );
      expect([...actual!]).toEqual([...expected!]);
      expect(actual!.filter((v) => v !== 0).length).toBeGreaterThan(0);
    },
  );
});

describe('wasm Identity and same-dtype Cast share memory', () => {
  it('returns the input data without a copy, and it outlives the input', () => {
    const before = tf.memory();
    const x = tf.tensor([1.5, -2, 3.25], [3]);
    const y = tf.clone(x); // the Identity kernel
    const z = tf.cast(x, 'float32'); // Cast to its own dtype
    expect(y.dataId).toBe(x.dataId);
    expect(z.dataId).toBe(x.dataId);
    // Three tensors, one buffer.
    expect(tf.memory().numDataBuffers - before.numDataBuffers).toBe(1);
    x.dispose();
    expect([...y.dataSync()]).toEqual([1.5, -2, 3.25]);
    y.dispose();
    expect([...z.dataSync()]).toEqual([1.5, -2, 3.25]);
    z.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers);
  });

  it('still converts between dtypes as the cpu backend does', async () => {
    const values = [1.7, -2.2, 0, 3, -0.4];
    const [wasm, cpu] = await onBothBackends(() => {
      const x = tf.tensor(values);
      return [
        tf.cast(tf.cast(x, 'int32'), 'float32'),
        tf.cast(tf.cast(x, 'bool'), 'float32'),
        tf.cast(tf.cast(tf.cast(x, 'int32'), 'bool'), 'float32'),
      ];
    });
    expect(wasm.map((a) => [...a])).toEqual(cpu.map((a) => [...a]));
    expect([...wasm[0]!]).toEqual([1, -2, 0, 3, 0]);
    // tfjs-backend-wasm's own Cast gave 254 for -2.2 and 3 for 3 here.
    expect([...wasm[1]!]).toEqual([1, 1, 0, 1, 1]);
  });
});

describe('in-place per-channel Sum, Mean and broadcast ops on wasm', () => {
  it.each([
    { shape: [5, 7, 16], axis: [0, 1], keepDims: false },
    { shape: [3, 4, 5, 6], axis: [0, 1, 2], keepDims: true }, // 6 channels: a scalar tail
    { shape: [600, 20], axis: [0], keepDims: false }, // rows past one 256-row block
    { shape: [2, 3, 4, 37], axis: [-2, 0, 1], keepDims: false },
  ])('sums and averages $shape over $axis as the cpu backend does', async (c) => {
    const sumRows = vi.spyOn(HeapKernels.prototype, 'sumRows');
    const [actual, expected] = await onBothBackends(() => {
      const x = tf.tensor(randomValues(count(c.shape), 23), c.shape);
      return [tf.sum(x, c.axis, c.keepDims), tf.mean(x, c.axis, c.keepDims)];
    });
    expect(sumRows).toHaveBeenCalledTimes(2);
    sumRows.mockRestore();
    const channels = c.shape.at(-1)!;
    expect(actual[0]!.length).toBe(channels);
    for (const i of [0, 1]) {
      expect(relativeError(actual[i]!, expected[i]!)).toBeLessThanOrEqual(TOLERANCE);
    }
    const shape = tf.sum(tf.zeros(c.shape), c.axis, c.keepDims).shape;
    expect(shape).toEqual(
      c.keepDims ? [...c.shape.slice(0, -1).map(() => 1), channels] : [channels],
    );
  });

  it('sums and averages zero rows to zeros, as the cpu backend', async () => {
    const [actual, expected] = await onBothBackends(() => {
      const x = tf.zeros([0, 3, 8]);
      return [tf.sum(x, [0, 1]), tf.mean(x, [0, 1])];
    });
    expect(actual.map((a) => [...a])).toEqual(expected.map((a) => [...a]));
    expect([...actual[0]!, ...actual[1]!]).toEqual(new Array(16).fill(0));
  });

  it('sums 300,000 rows of 0.1 per channel to within the float32 bound of a 256-row block', () => {
    const rows = 300_000;
    const x = tf.fill([rows, 4], 0.1);
    const sum = tf.sum(x, 0);
    // A float32 running sum over the 300,000 rows gives 29,920.43 (2.7e-3 off); 256 rows of
    // float32 rounding bound the blocked sum's relative error by 256·2⁻²⁴ = 1.5e-5.
    for (const v of sum.dataSync()) expect(Math.abs(v - 30_000) / 30_000).toBeLessThan(1e-5);
    tf.dispose([x, sum]);
  });

  it('leaves other reductions to the backend', async () => {
    const sumRows = vi.spyOn(HeapKernels.prototype, 'sumRows');
    const [actual, expected] = await onBothBackends(() => {
      const x = tf.tensor(randomValues(24, 29), [2, 3, 4]);
      return [
        tf.sum(x, [1, 2]),
        tf.sum(x),
        tf.mean(x, [0, 1]).slice(0, 2),
        tf.sum(tf.cast(x, 'int32'), 0),
      ];
    });
    // Only the mean over the leading axes of 4 channels is taken.
    expect(sumRows).toHaveBeenCalledTimes(1);
    sumRows.mockRestore();
    actual.forEach((a, i) => expect(relativeError(a, expected[i]!)).toBeLessThanOrEqual(TOLERANCE));
  });

  it.each([
    { a: [4, 5, 6, 8], b: [8] },
    { a: [1, 1, 1, 8], b: [3, 4, 2, 8] }, // vector first
    { a: [2, 3, 5, 6], b: [1, 1, 1, 6] }, // 6 channels: a scalar tail
    { a: [7], b: [9, 7] },
    { a: [2, 40, 60, 3], b: [2, 40, 60, 3] }, // same shapes, 14,400 elements
  ])(
    'adds, subtracts, multiplies and divides $a by $b bit for bit as the cpu backend',
    async (c) => {
      const broadcastRows = vi.spyOn(HeapKernels.prototype, 'broadcastRows');
      const [actual, expected] = await onBothBackends(() => {
        const a = tf.tensor(randomValues(count(c.a), 31), c.a);
        const b = tf.add(tf.tensor(randomValues(count(c.b), 37), c.b), 1.5); // no zero divisors
        return [tf.add(a, b), tf.sub(a, b), tf.mul(a, b), tf.div(a, b)];
      });
      expect(broadcastRows).toHaveBeenCalledTimes(4);
      broadcastRows.mockRestore();
      actual.forEach((a, i) => expect([...a]).toEqual([...expected[i]!]));
      expect(actual[0]!.length).toBe(Math.max(count(c.a), count(c.b)));
    },
  );

  it.each([
    { x: [4, 5, 6, 8], withAffine: true },
    { x: [3, 7, 6], withAffine: false },
  ])('batch-normalizes $x (offset and scale: $withAffine) as the cpu backend does', async (c) => {
    const normalizeRows = vi.spyOn(HeapKernels.prototype, 'normalizeRows');
    const channels = c.x.at(-1)!;
    const [actual, expected] = await onBothBackends(() => {
      const x = tf.tensor(randomValues(count(c.x), 47), c.x);
      const mean = tf.tensor1d(randomValues(channels, 53));
      const variance = tf.add(tf.tensor1d(randomValues(channels, 59)), 1.2);
      const [offset, scale] = c.withAffine
        ? [tf.tensor1d(randomValues(channels, 61)), tf.tensor1d(randomValues(channels, 67))]
        : [undefined, undefined];
      return [tf.batchNorm(x, mean, variance, offset, scale, 1e-3)];
    });
    expect(normalizeRows).toHaveBeenCalledTimes(1);
    normalizeRows.mockRestore();
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('batch-normalizes values around a mean far above their spread as accurately', async () => {
    // x = 1000 + 0.01·u, mean 1000, variance 1e-4: folding the mean into an offset (x·a + b)
    // lost three digits here (relative error 4e-3).
    const [actual, expected] = await onBothBackends(() => {
      const x = tf.add(tf.mul(tf.tensor(randomValues(64, 103), [2, 4, 8]), 0.01), 1000);
      return [tf.batchNorm(x, tf.fill([8], 1000), tf.fill([8], 1e-4), undefined, undefined, 1e-3)];
    });
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThanOrEqual(1e-4);
  });

  it('leaves small same-shape, scalar, narrow and integer operands to the backend', async () => {
    const broadcastRows = vi.spyOn(HeapKernels.prototype, 'broadcastRows');
    const [actual, expected] = await onBothBackends(() => {
      const a = tf.tensor(randomValues(24, 41), [2, 4, 3]);
      const v = tf.tensor(randomValues(3, 43), [3]);
      return [
        tf.mul(a, a),
        tf.mul(a, tf.scalar(3)),
        tf.sub(a, v),
        tf.cast(
          tf.add(tf.cast(tf.mul(a, 10), 'int32'), tf.tensor([1, 2, 3], [3], 'int32')),
          'float32',
        ),
      ];
    });
    expect(broadcastRows).not.toHaveBeenCalled();
    broadcastRows.mockRestore();
    actual.forEach((a, i) => expect([...a]).toEqual([...expected[i]!]));
  });
});
