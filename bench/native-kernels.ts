/**
 * The in-place kernels run by the native addon (`native/`) against the same kernels in
 * WebAssembly, shape by shape at batch 128 (ResNet-20's Winograd convolutions and gradients,
 * MobileNet-fashion's depthwise ones, LeNet's direct convolution, batch norm, per-channel sums,
 * Adam): milliseconds of this process's CPU time per call (a busy machine does not skew it),
 * best of `--reps`, and the ratio. Where the addon has kernels written for wide vectors
 * (`native/src/wide.c`: AVX-512 or AVX2), the native column runs them and a middle column the
 * 128-bit build of the same kernels (`setWide(false)`). Prints JSON, then a table.
 *
 *   npx tsx bench/native-kernels.ts [--reps 5] [--filter Winograd]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerConvGradientKernels } from '../src/ml/kernels/conv-grads.ts';
import { allowNativeKernels } from '../src/ml/kernels/heap-kernels.ts';
import { kernelEngine, nativeKernels } from '../src/ml/kernels/native-kernels.ts';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '5' }, filter: { type: 'string', default: '' } },
});
const REPS = Number(values.reps);
const B = 128;

interface Case {
  readonly name: string;
  readonly make: () => tf.Tensor[];
  readonly run: (inputs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
}

const conv = (
  hw: number,
  c: number,
  o: number,
  kind: 'fwd' | 'dX' | 'dW',
  { f = 3, s = 1 }: { f?: number; s?: number } = {},
): Case => {
  const attrs = { strides: [s, s], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1] };
  const oh = Math.ceil(hw / s);
  return {
    name:
      f === 3 && s === 1
        ? `Winograd 3x3 ${hw}x${hw}x${c}->${o} ${kind}`
        : `im2col ${f}x${f}/${s} ${hw}x${hw}x${c}->${o} ${kind}`,
    make: () => [
      tf.randomNormal([B, hw, hw, c]),
      tf.randomNormal([B, oh, oh, o]),
      tf.randomNormal([f, f, c, o]),
    ],
    run: ([x, dy, w]) =>
      kind === 'fwd'
        ? tf.engine().runKernel(tf.Conv2D, { x: x!, filter: w! }, attrs)
        : kind === 'dX'
          ? tf
              .engine()
              .runKernel(
                tf.Conv2DBackpropInput,
                { dy: dy!, filter: w! },
                { ...attrs, inputShape: x!.shape },
              )
          : tf
              .engine()
              .runKernel(
                tf.Conv2DBackpropFilter,
                { x: x!, dy: dy! },
                { ...attrs, filterShape: [f, f, c, o] },
              ),
  };
};

const depthwise = (hw: number, c: number, s: number, kind: 'fwd' | 'dX' | 'dW'): Case => {
  const oh = Math.ceil(hw / s);
  const attrs = { strides: [s, s], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1] };
  return {
    name: `depthwise 3x3/${s} ${hw}x${hw}x${c} ${kind}`,
    make: () => [
      tf.randomNormal([B, hw, hw, c]),
      tf.randomNormal([B, oh, oh, c]),
      tf.randomNormal([3, 3, c, 1]),
    ],
    run: ([x, dy, w]) =>
      kind === 'fwd'
        ? tf.engine().runKernel(tf.DepthwiseConv2dNative, { x: x!, filter: w! }, attrs)
        : kind === 'dX'
          ? tf
              .engine()
              .runKernel(
                tf.DepthwiseConv2dNativeBackpropInput,
                { dy: dy!, filter: w! },
                { ...attrs, inputShape: x!.shape },
              )
          : tf
              .engine()
              .runKernel(
                tf.DepthwiseConv2dNativeBackpropFilter,
                { x: x!, dy: dy! },
                { ...attrs, filterShape: [3, 3, c, 1] },
              ),
  };
};

const CASES: Case[] = [
  conv(32, 16, 16, 'fwd'),
  conv(32, 16, 16, 'dX'),
  conv(32, 16, 16, 'dW'),
  conv(16, 32, 32, 'fwd'),
  conv(8, 64, 64, 'fwd'),
  conv(8, 64, 64, 'dX'),
  conv(8, 64, 64, 'dW'),
  // ResNet-20's strided convolutions (3x3 and the 1x1 shortcuts, stride 2).
  conv(32, 16, 32, 'fwd', { s: 2 }),
  conv(32, 16, 32, 'dX', { s: 2 }),
  conv(32, 16, 32, 'dW', { s: 2 }),
  conv(16, 32, 64, 'fwd', { s: 2 }),
  conv(16, 32, 64, 'dX', { s: 2 }),
  conv(16, 32, 64, 'dW', { s: 2 }),
  conv(32, 16, 32, 'fwd', { f: 1, s: 2 }),
  conv(32, 16, 32, 'dX', { f: 1, s: 2 }),
  conv(32, 16, 32, 'dW', { f: 1, s: 2 }),
  // ResNet-20's first layer's filter gradient; AlexNet's conv2 and conv3 (past Winograd's bounds).
  conv(32, 3, 16, 'dW', { f: 3, s: 1 }),
  conv(4, 96, 256, 'fwd', { f: 5 }),
  conv(4, 96, 256, 'dX', { f: 5 }),
  conv(4, 96, 256, 'dW', { f: 5 }),
  conv(2, 256, 384, 'fwd'),
  conv(2, 256, 384, 'dX'),
  conv(2, 256, 384, 'dW'),
  // AlexNet's conv1 (11x11 stride 4).
  conv(32, 3, 96, 'fwd', { f: 11, s: 4 }),
  conv(32, 3, 96, 'dW', { f: 11, s: 4 }),
  depthwise(28, 16, 1, 'fwd'),
  depthwise(28, 16, 1, 'dX'),
  depthwise(28, 16, 1, 'dW'),
  depthwise(14, 64, 1, 'fwd'),
  depthwise(28, 32, 2, 'dX'),
  {
    name: 'direct 5x5 28x28x1->6 (LeNet conv1)',
    make: () => [tf.randomNormal([B, 28, 28, 1]), tf.randomNormal([5, 5, 1, 6])],
    run: ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'),
  },
  {
    name: 'batch norm 128x32x32x16',
    make: () => [tf.randomNormal([B, 32, 32, 16]), tf.randomNormal([16]), tf.ones([16])],
    run: ([x, m, v]) => tf.batchNorm(x!, m!, v!, m, v),
  },
  {
    name: 'Sum per channel 128x32x32x16',
    make: () => [tf.randomNormal([B, 32, 32, 16])],
    run: ([x]) => tf.sum(x!, [0, 1, 2]),
  },
  {
    name: 'ClipByValue gradient 128x28x28x32',
    make: () => [tf.randomNormal([B, 28, 28, 32])],
    run: ([x]) => tf.grad((a: tf.Tensor) => tf.clipByValue(a, 0, 6))(x!),
  },
];

function time(c: Case, inputs: tf.Tensor[]): number {
  tf.dispose(c.run(inputs)); // warm-up
  let best = Infinity;
  for (let r = 0; r < REPS; r++) {
    const cpu0 = process.cpuUsage();
    const out = c.run(inputs);
    (Array.isArray(out) ? out : [out]).forEach((t) => t.dataSync());
    const cpu = process.cpuUsage(cpu0);
    tf.dispose(out);
    best = Math.min(best, (cpu.user + cpu.system) / 1000);
  }
  return best;
}

registerConvGradientKernels();
await tf.setBackend('wasm');
const engine = kernelEngine();
if (engine.engine !== 'native') {
  console.log(JSON.stringify({ engine }));
  console.error(`native kernels not running (${engine.reason ?? ''}): nothing to compare`);
  process.exit(1);
}
const addon = nativeKernels();
const setWide = addon?.setWide as ((on: boolean) => boolean) | undefined;
const wideLanes = typeof addon?.wideLanes === 'number' ? addon.wideLanes : 0;
const rows = [];
for (const c of CASES.filter((k) => k.name.includes(values.filter))) {
  const inputs = c.make();
  allowNativeKernels(false);
  const wasmMs = time(c, inputs);
  allowNativeKernels(true);
  setWide?.(false);
  const native128Ms = time(c, inputs);
  setWide?.(true);
  const nativeMs = time(c, inputs);
  tf.dispose(inputs);
  rows.push({ kernel: c.name, wasmMs, native128Ms, nativeMs, speedup: wasmMs / nativeMs });
}
console.log(JSON.stringify({ isa: engine.isa, wideLanes, reps: REPS, rows }, null, 2));
console.table(
  rows.map((r) => ({
    kernel: r.kernel,
    'wasm ms': r.wasmMs.toFixed(2),
    'native 128-bit ms': r.native128Ms.toFixed(2),
    'native ms': r.nativeMs.toFixed(2),
    speedup: `${r.speedup.toFixed(2)}x`,
  })),
);
