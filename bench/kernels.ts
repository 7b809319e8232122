/**
 * Per-shape-class timings of the wasm kernels of src/ml/kernels/fast-kernels.ts against the
 * kernels they wrap: dense-layer products in every transpose form, AlexNet's 4096-wide layers,
 * ResNet-20's and LeNet's convolutions and their gradients (Winograd, direct, GEMM), and the
 * in-place pool gradient, Reverse and Tile. Prints GFLOP/s for both and the
 * ratio (milliseconds by this thread's CPU time, so a busy machine does not skew it); the fast
 * kernels take only the shapes where this ratio is above 1.
 *
 *   npx tsx bench/kernels.ts [--reps 3]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerConvGradientKernels } from '../src/ml/kernels/conv-grads.ts';
import { registerFastKernels, unregisterFastKernels } from '../src/ml/kernels/fast-kernels.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' } } });
const REPS = Number(values.reps);

interface Case {
  readonly name: string;
  readonly flops: number;
  readonly make: () => tf.Tensor[];
  readonly run: (inputs: tf.Tensor[]) => tf.Tensor;
}

function matmulCase(m: number, k: number, n: number, tA: boolean, tB: boolean, name: string): Case {
  return {
    name: `${name} ${m}x${k}·${k}x${n}${tA ? ' tA' : ''}${tB ? ' tB' : ''}`,
    flops: 2 * m * n * k,
    make: () => [tf.randomNormal(tA ? [k, m] : [m, k]), tf.randomNormal(tB ? [n, k] : [k, n])],
    run: ([a, b]) => tf.matMul(a!, b!, tA, tB),
  };
}

const CONV_BATCH = 128;

/**
 * A conv at batch 128 through its kernel directly: the forward pass (`Conv2D`) or a gradient,
 * 'same' padding unless given.
 */
function convCase(
  hw: number,
  c: number,
  o: number,
  f: number,
  s: number,
  kind: 'fwd' | 'dW' | 'dX',
  pad: 'same' | 'valid' = 'same',
): Case {
  const oh = pad === 'same' ? Math.ceil(hw / s) : Math.floor((hw - f) / s) + 1;
  const common = { strides: [s, s], pad, dataFormat: 'NHWC', dilations: [1, 1] };
  const run = ([x, dy, w]: tf.Tensor[]): tf.Tensor => {
    const engine = tf.engine();
    if (kind === 'fwd') return engine.runKernel(tf.Conv2D, { x: x!, filter: w! }, common);
    return kind === 'dW'
      ? engine.runKernel(
          tf.Conv2DBackpropFilter,
          { x: x!, dy: dy! },
          { ...common, filterShape: [f, f, c, o] },
        )
      : engine.runKernel(
          tf.Conv2DBackpropInput,
          { dy: dy!, filter: w! },
          { ...common, inputShape: [CONV_BATCH, hw, hw, c] },
        );
  };
  return {
    name: `conv ${kind} ${hw}x${hw}x${c} ${f}x${f}/${s}${pad === 'valid' ? ' valid' : ''} -> ${o}`,
    flops: 2 * CONV_BATCH * oh * oh * f * f * c * o,
    make: () => [
      tf.randomNormal([CONV_BATCH, hw, hw, c]),
      tf.randomNormal([CONV_BATCH, oh, oh, o]),
      tf.randomNormal([f, f, c, o]),
    ],
    run,
  };
}

const CASES: Case[] = [
  matmulCase(128, 256, 120, false, false, 'dense fwd'),
  matmulCase(256, 128, 120, true, false, 'dense dW'),
  matmulCase(128, 120, 256, false, true, 'dense dX'),
  matmulCase(128, 4096, 4096, false, false, 'alexnet fwd'),
  matmulCase(4096, 128, 4096, true, false, 'alexnet dW'),
  matmulCase(128, 4096, 4096, false, true, 'alexnet dX'),
  matmulCase(128, 64, 10, false, false, 'resnet head'),
  // ResNet-20's 3×3 stride-1 convs: Winograd F(4×4, 3×3) (forward and both gradients).
  convCase(32, 16, 16, 3, 1, 'fwd'),
  convCase(16, 32, 32, 3, 1, 'fwd'),
  convCase(8, 64, 64, 3, 1, 'fwd'),
  convCase(32, 16, 16, 3, 1, 'dX'),
  convCase(8, 64, 64, 3, 1, 'dX'),
  convCase(32, 16, 16, 3, 1, 'dW'),
  convCase(16, 32, 32, 3, 1, 'dW'),
  convCase(8, 64, 64, 3, 1, 'dW'),
  // AlexNet's 3×3 convs on 2×2 maps: left to XNNPACK (speedup 1).
  convCase(2, 384, 384, 3, 1, 'fwd'),
  // Few input channels: the direct convolution (LeNet's conv1 and conv2, ResNet-20's first).
  convCase(28, 1, 6, 5, 1, 'fwd', 'valid'),
  convCase(12, 6, 16, 5, 1, 'fwd', 'valid'),
  convCase(32, 3, 16, 3, 1, 'fwd'),
  convCase(28, 1, 6, 5, 1, 'dW', 'valid'),
  convCase(32, 3, 16, 3, 1, 'dW'),
  convCase(32, 16, 32, 1, 2, 'dW'),
  convCase(32, 16, 32, 3, 2, 'dW'),
  convCase(32, 16, 32, 3, 2, 'dX'),
  convCase(32, 16, 32, 1, 2, 'dX'),
  {
    name: 'maxPool grad 128x8x8x96 3x3/2 same (AlexNet)',
    flops: 0,
    make: () => [tf.randomNormal([128, 8, 8, 96])],
    run: ([x]) => tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 3, 2, 'same'))(x!),
  },
  {
    name: 'reverse [5,5,96,256] on axes 0, 1 (filter flip)',
    flops: 0,
    make: () => [tf.randomNormal([5, 5, 96, 256])],
    run: ([x]) => tf.reverse(x!, [0, 1]),
  },
  {
    name: 'tile [1,1,1,16] to 128x32x32x16 (BN grad)',
    flops: 0,
    make: () => [tf.randomNormal([1, 1, 1, 16])],
    run: ([x]) => tf.tile(x!, [128, 32, 32, 1]),
  },
];

/**
 * Milliseconds per call: the best of REPS rounds, each of as many calls as fill ~100 ms, timed by
 * this process's CPU time (the kernels run on this thread only, so other processes sharing the
 * machine do not inflate it).
 */
function time(c: Case, inputs: tf.Tensor[]): number {
  const once = (): void => {
    const y = c.run(inputs);
    y.dataSync();
    y.dispose();
  };
  once(); // warm-up
  const t0 = performance.now();
  once();
  const calls = Math.max(1, Math.ceil(100 / (performance.now() - t0)));
  let best = Infinity;
  for (let r = 0; r < REPS; r++) {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) once();
    const cpu = process.cpuUsage(cpu0);
    best = Math.min(best, (cpu.user + cpu.system) / 1000 / calls);
  }
  return best;
}

registerConvGradientKernels();
await tf.setBackend('wasm');
const rows = [];
for (const c of CASES) {
  const inputs = c.make();
  const fast = time(c, inputs);
  unregisterFastKernels();
  const before = time(c, inputs);
  registerFastKernels();
  tf.dispose(inputs);
  const gflops = (ms: number) => (c.flops === 0 ? '' : (c.flops / ms / 1e6).toFixed(1));
  rows.push({
    case: c.name,
    'before ms': Number(before.toFixed(2)),
    'fast ms': Number(fast.toFixed(2)),
    'before GFLOP/s': gflops(before),
    'fast GFLOP/s': gflops(fast),
    speedup: Number((before / fast).toFixed(2)),
  });
}
console.table(rows);
