/**
 * Where one training step's time goes: the kernels of a `trainOnBatch` on the wasm backend with
 * this project's kernels, summed by kernel name (and, with `--shapes`, by input shapes), slowest
 * first, with the step's wall time. Composite kernels appear with the ops they run.
 *
 * Times are means over `--steps` steps after two warm-up steps (one step alone is noisy: garbage
 * collection, page faults).
 *
 *   npx tsx bench/profile-step.ts [--model resnet20|lenet|alexnet|mobilenet|plaincnn] [--batch 128] [--steps 5] [--shapes]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { buildAlexNet } from '../src/ml/architectures/alexnet.ts';
import { buildLeNet } from '../src/ml/architectures/lenet.ts';
import { buildMobileNetLike } from '../src/ml/architectures/mobilenet-fashion.ts';
import { buildResNet20 } from '../src/ml/architectures/resnet20.ts';
import { initBackend } from '../src/ml/backend.ts';
import { createAdam } from '../src/ml/fused-adam.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet20' },
    batch: { type: 'string', default: '128' },
    shapes: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
    steps: { type: 'string', default: '5' },
  },
});

const builders: Record<string, () => tf.LayersModel> = {
  resnet20: () => buildResNet20(),
  lenet: () => buildLeNet(),
  alexnet: () => buildAlexNet({ normalization: 'none' }),
  mobilenet: () => buildMobileNetLike(),
  plaincnn: () => buildMobileNetLike({ separable: false }),
};
const build = builders[values.model];
if (!build) throw new Error(`--model must be one of ${Object.keys(builders).join(', ')}`);

await initBackend({ prefer: 'wasm' });
const model = build();
model.compile({ optimizer: createAdam(1e-3), loss: 'categoricalCrossentropy' });
const batch = Number(values.batch);
const inputShape = model.inputs[0]!.shape.slice(1) as number[];
const classes = model.outputs[0]!.shape.at(-1) as number;
const xs = tf.randomUniform([batch, ...inputShape]);
const ys = tf.oneHot(tf.randomUniform([batch], 0, classes, 'int32'), classes).cast('float32');
const steps = Number(values.steps);
if (!Number.isInteger(steps) || steps < 1) throw new Error('--steps must be a positive integer');
// Warm-up: kernel set-up, optimizer slots, the GEMM module's memory.
for (let i = 0; i < 2; i++) await model.trainOnBatch(xs, ys);
const t0 = performance.now();
for (let i = 0; i < steps; i++) await model.trainOnBatch(xs, ys);
const stepMs = (performance.now() - t0) / steps;
const totals = new Map<string, { ms: number; calls: number }>();
let sum = 0;
let kernels = 0;
for (let i = 0; i < steps; i++) {
  const info = await tf.profile(() => model.trainOnBatch(xs, ys));
  kernels = info.kernels.length;
  for (const k of info.kernels) {
    const ms = (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0) / steps;
    sum += ms;
    const key = values.shapes ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
    const t = totals.get(key) ?? { ms: 0, calls: 0 };
    totals.set(key, { ms: t.ms + ms, calls: t.calls + 1 / steps });
  }
}
console.log(
  `${values.model}, batch ${batch}: step ${stepMs.toFixed(1)} ms (mean of ${steps}); ${kernels} kernels, ${sum.toFixed(1)} ms inside them (nested composites count twice)`,
);
for (const [key, t] of [...totals].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(values.top))) {
  console.log(
    `${t.ms.toFixed(2).padStart(9)} ms ${String(Math.round(t.calls)).padStart(5)}x  ${key}`,
  );
}
tf.dispose([xs, ys]);
model.dispose();
