import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  KERNEL_PLAN,
  depthwiseConv2dBackpropFilter,
  depthwiseConv2dBackpropInput,
  registerConvGradientKernels,
  unregisterConvGradientKernels,
} from '../../../../src/ml/kernels/conv-grads.ts';
import { randomValues, relativeError } from './reference.ts';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

interface ConvCase {
  readonly kind: 'conv2d' | 'depthwise';
  readonly batch: number;
  readonly size: readonly [number, number];
  readonly inC: number;
  /** Output channels (conv2d) or channel multiplier (depthwise). */
  readonly outC: number;
  readonly filter: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly pad: Pad;
  /** Output-size rounding for a numeric pad (depthwise only: conv2d's gradient drops it). */
  readonly rounding?: 'floor' | 'round' | 'ceil';
}

/** Gradients are compared with the relative error max|a − b| / max|b|. */
const TOLERANCE = 1e-5;
/** Backends the composite kernels run on, each compared with cpu's built-in kernels. */
const BACKENDS = ['wasm', 'cpu'] as const;

function forward(c: ConvCase, x: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  const strides: [number, number] = [c.strides[0], c.strides[1]];
  return c.kind === 'conv2d'
    ? tf.conv2d(x, filter, strides, c.pad)
    : tf.depthwiseConv2d(x, filter, strides, c.pad, 'NHWC', [1, 1], c.rounding);
}

interface Inputs {
  readonly x: Float32Array;
  readonly filter: Float32Array;
  readonly xShape: [number, number, number, number];
  readonly filterShape: [number, number, number, number];
}

function makeInputs(c: ConvCase, seed: number): Inputs {
  const xShape: Inputs['xShape'] = [c.batch, c.size[0], c.size[1], c.inC];
  const filterShape: Inputs['filterShape'] = [c.filter[0], c.filter[1], c.inC, c.outC];
  return {
    x: randomValues(
      xShape.reduce((a, b) => a * b),
      seed,
    ),
    filter: randomValues(
      filterShape.reduce((a, b) => a * b),
      seed + 1,
    ),
    xShape,
    filterShape,
  };
}

/**
 * Gradients of `Σ conv(x, W) · u` (so `dy = u`, a fixed random tensor) on `backend`, and how many
 * tensors the computation left behind.
 */
async function gradients(
  backend: string,
  c: ConvCase,
  inputs: Inputs,
): Promise<{ dx: Float32Array; dW: Float32Array; leaked: number }> {
  await tf.setBackend(backend);
  const x = tf.tensor4d(inputs.x, inputs.xShape);
  const filter = tf.tensor4d(inputs.filter, inputs.filterShape);
  const outShape = tf.tidy(() => forward(c, x, filter).shape);
  const u = tf.tensor(
    randomValues(
      outShape.reduce((a, b) => a * b),
      99,
    ),
    outShape,
  );
  const before = tf.memory().numTensors;

  const [dx, dW] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(forward(c, a as tf.Tensor4D, b as tf.Tensor4D), u)),
  )([x, filter]);
  const result = {
    dx: (await dx!.data()) as Float32Array,
    dW: (await dW!.data()) as Float32Array,
  };
  tf.dispose([dx!, dW!]);
  const leaked = tf.memory().numTensors - before;
  tf.dispose([x, filter, u]);
  return { ...result, leaked };
}

/** Runs `fn` with the backends' own kernels (cpu's are the reference). */
async function withBuiltInKernels<T>(fn: () => Promise<T>): Promise<T> {
  unregisterConvGradientKernels();
  try {
    return await fn();
  } finally {
    registerConvGradientKernels();
  }
}

function label(c: ConvCase): string {
  const pad =
    (typeof c.pad === 'object' ? JSON.stringify(c.pad) : String(c.pad)) +
    (c.rounding === undefined ? '' : ` (${c.rounding})`);
  return (
    `${c.kind} x[${c.batch},${c.size.join(',')},${c.inC}] f${c.filter.join('x')} ` +
    `${c.kind === 'conv2d' ? 'outC' : 'mult'} ${c.outC} stride ${c.strides.join(',')} pad ${pad}`
  );
}

function conv2dCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const channels = [
    { inC: 1, outC: 4, filter: [3, 3] },
    { inC: 3, outC: 5, filter: [2, 2] }, // even filter: asymmetric 'same' padding
    { inC: 6, outC: 2, filter: [5, 3] },
  ] as const;
  for (const strides of [
    [1, 1],
    [2, 2],
  ] as const) {
    for (const pad of ['same', 'valid'] as const) {
      for (const size of [
        [7, 7],
        [8, 8],
        [9, 6],
      ] as const) {
        for (const ch of channels) {
          cases.push({ kind: 'conv2d', batch: 3, size, strides, pad, ...ch });
        }
      }
    }
  }
  cases.push(
    {
      kind: 'conv2d',
      batch: 2,
      size: [9, 8],
      inC: 2,
      outC: 3,
      filter: [3, 3],
      strides: [2, 1],
      pad: 'same',
    },
    {
      kind: 'conv2d',
      batch: 2,
      size: [6, 7],
      inC: 2,
      outC: 3,
      filter: [3, 3],
      strides: [1, 1],
      pad: 1,
    },
    {
      kind: 'conv2d',
      batch: 2,
      size: [7, 6],
      inC: 3,
      outC: 2,
      filter: [3, 2],
      strides: [2, 2],
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
  );
  return cases;
}

function depthwiseCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const channels = [
    { inC: 1, outC: 1, filter: [3, 3] },
    { inC: 3, outC: 2, filter: [2, 2] },
    { inC: 4, outC: 3, filter: [3, 5] },
    { inC: 2, outC: 1, filter: [4, 4] },
  ] as const;
  for (const strides of [
    [1, 1],
    [2, 2],
  ] as const) {
    for (const pad of ['same', 'valid'] as const) {
      for (const size of [
        [7, 7],
        [8, 10],
      ] as const) {
        for (const ch of channels) {
          cases.push({ kind: 'depthwise', batch: 2, size, strides, pad, ...ch });
        }
      }
    }
  }
  cases.push({
    kind: 'depthwise',
    batch: 3,
    size: [9, 9],
    inC: 2,
    outC: 2,
    filter: [3, 3],
    strides: [1, 2],
    pad: 'same',
  });
  for (const rounding of ['floor', 'ceil'] as const) {
    cases.push({
      kind: 'depthwise',
      batch: 2,
      size: [8, 8],
      inC: 2,
      outC: 2,
      filter: [3, 3],
      strides: [2, 2],
      pad: 1,
      rounding,
    });
  }
  return cases;
}

beforeAll(() => {
  // Makes the engine check every kernel for leaked data buffers and silences tfjs's console hints.
  tf.env().set('IS_TEST', true);
  registerConvGradientKernels();
});

afterAll(async () => {
  unregisterConvGradientKernels();
  await tf.setBackend('cpu');
});

describe('conv-gradient kernels', () => {
  it.each([...conv2dCases(), ...depthwiseCases()].map((c, i) => [label(c), c, i] as const))(
    'match cpu reference gradients without leaking tensors: %s',
    async (_name, c, i) => {
      const inputs = makeInputs(c, 1000 + 7 * i);
      const reference = await withBuiltInKernels(() => gradients('cpu', c, inputs));

      for (const backend of BACKENDS) {
        const actual = await gradients(backend, c, inputs);

        expect
          .soft(relativeError(actual.dW, reference.dW), `${backend} dW`)
          .toBeLessThanOrEqual(TOLERANCE);
        expect
          .soft(relativeError(actual.dx, reference.dx), `${backend} dx`)
          .toBeLessThanOrEqual(TOLERANCE);
        expect(actual.leaked, `${backend} leaked tensors`).toBe(0);
      }
    },
  );

  it('handles depthwise dilation 2 (stride 1) like a conv with a zero-stuffed filter', async () => {
    // Autodiff refuses dilated depthwise gradients, so the reference is the gradient of the
    // equivalent undilated conv whose filter has zeros between the taps.
    await tf.setBackend('wasm');
    const inputs = makeInputs(
      {
        kind: 'depthwise',
        batch: 2,
        size: [9, 8],
        inC: 3,
        outC: 2,
        filter: [3, 2],
        strides: [1, 1],
        pad: 'same',
      },
      42,
    );
    // [3, 2] taps at dilation 2 = a [5, 3] filter with zero rows and columns between the taps.
    const stuffed = new Float32Array(5 * 3 * 3 * 2);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 2; j++) {
        for (let k = 0; k < 6; k++) {
          stuffed[(2 * i * 3 + 2 * j) * 6 + k] = inputs.filter[(i * 2 + j) * 6 + k]!;
        }
      }
    }
    const [expectedDx, expectedDW, actualDx, actualDW] = tf.tidy(() => {
      const x = tf.tensor4d(inputs.x, inputs.xShape);
      const filter = tf.tensor4d(inputs.filter, inputs.filterShape);
      const stuffedFilter = tf.tensor4d(stuffed, [5, 3, 3, 2]);
      const dy = tf.tensor4d(randomValues(2 * 9 * 8 * 6, 7), [2, 9, 8, 6]);
      const [dx, dStuffed] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), dy)),
      )([x, stuffedFilter]);
      const expectedDWTensor = tf.stridedSlice(dStuffed!, [0, 0, 0, 0], [5, 3, 3, 2], [2, 2, 1, 1]);
      const ownDx = depthwiseConv2dBackpropInput(inputs.xShape, dy, filter, [1, 1], [2, 2], 'same');
      const ownDW = depthwiseConv2dBackpropFilter(
        x,
        dy,
        inputs.filterShape,
        [1, 1],
        [2, 2],
        'same',
      );
      return [dx!, expectedDWTensor, ownDx, ownDW].map((t) => t.dataSync() as Float32Array);
    });

    expect(relativeError(actualDW!, expectedDW!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(actualDx!, expectedDx!)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('trains a model with Conv2D, DepthwiseConv2D and SeparableConv2D layers on wasm', async () => {
    await tf.setBackend('wasm');
    // tfjs's own fused conv op trips the engine's per-kernel leak check on wasm under a gradient
    // tape (its saved clones count as new data ids), with or without these kernels.
    tf.env().set('IS_TEST', false);
    onTestFinished(() => tf.env().set('IS_TEST', true));
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [12, 12, 2],
          filters: 4,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
        }),
        tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }),
        tf.layers.separableConv2d({ filters: 3, kernelSize: 2, activation: 'relu' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
    const xs = tf.tensor4d(randomValues(8 * 12 * 12 * 2, 5), [8, 12, 12, 2]);
    const ys = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32'), 2);
    await model.fit(xs, ys, { epochs: 1, batchSize: 8, verbose: 0 });
    const before = tf.memory().numTensors;

    const history = await model.fit(xs, ys, { epochs: 5, batchSize: 8, verbose: 0 });

    const losses = history.history.loss as number[];
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)).toBeLessThan(losses[0]!);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it('rejects NCHW data and stride-with-dilation with a clear message', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 6, 6, 2]);
    const dy = tf.zeros([1, 6, 6, 2]);
    const dyStrided = tf.zeros([1, 3, 3, 2]);

    expect(() =>
      tf.engine().runKernel(
        tf.Conv2DBackpropFilter,
        { x, dy },
        {
          strides: 1,
          pad: 'same',
          dataFormat: 'NCHW',
          filterShape: [3, 3, 2, 2],
        },
      ),
    ).toThrow(/dataFormat "NCHW" is not supported.*NHWC/);
    expect(() =>
      tf.engine().runKernel(
        tf.DepthwiseConv2dNativeBackpropFilter,
        { x, dy: dyStrided },
        {
          strides: 2,
          dilations: 2,
          pad: 'same',
          filterShape: [3, 3, 2, 1],
        },
      ),
    ).toThrow(/strides \[2, 2\] together with dilations \[2, 2\]/);
    tf.dispose([x, dy, dyStrided]);
  });

  it('registers idempotently and restores the built-in kernels on unregister', () => {
    const kernelFunc = (plan: (typeof KERNEL_PLAN)[number]) =>
      (tf.getKernel(plan.kernelName, plan.backendName) as tf.KernelConfig | undefined)?.kernelFunc;
    unregisterConvGradientKernels();
    const builtIn = KERNEL_PLAN.map(kernelFunc);

    registerConvGradientKernels();
    const installed = KERNEL_PLAN.map(kernelFunc);
    registerConvGradientKernels();

    expect(KERNEL_PLAN.map(kernelFunc)).toEqual(installed);
    KERNEL_PLAN.forEach((plan, i) => {
      expect(installed[i], `${plan.backendName}/${plan.kernelName}`).toBeTypeOf('function');
      expect(installed[i], `${plan.backendName}/${plan.kernelName}`).not.toBe(builtIn[i]);
      expect(builtIn[i] === undefined, `${plan.backendName}/${plan.kernelName}`).toBe(
        plan.mode === 'fill',
      );
    });
    unregisterConvGradientKernels();
    expect(KERNEL_PLAN.map(kernelFunc)).toEqual(builtIn);
    registerConvGradientKernels();
  });
});
