/**
 * Training throughput of LeNet-5 on random 28×28 digits, on wasm and briefly on cpu, both with
 * this project's training kernels (src/ml/kernels/conv-grads.ts). `--profile` lists the slowest
 * kernels of one training step (composite kernels appear with the ops they run).
 *
 *   npx tsx bench/lenet-train.ts [--samples 3072] [--cpu-batches 3] [--profile]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { buildLeNet as buildProjectLeNet } from '../src/ml/architectures/lenet.ts';
import { registerConvGradientKernels } from '../src/ml/kernels/conv-grads.ts';

const BATCH = 128;

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '3072' },
    'cpu-batches': { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
  },
});

/** The project's LeNet (src/ml/architectures/lenet.ts), compiled as the course compiles it. */
function buildLeNet(): tf.LayersModel {
  const model = buildProjectLeNet();
  model.compile({
    optimizer: tf.train.adam(1e-3),
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return model;
}

/** Throughput of one run: per wall-clock second, and per second of this process's CPU time. */
interface Throughput {
  wall: number;
  cpu: number;
}

/**
 * Trains one epoch on `samples` random samples (after a one-batch warm-up) and returns samples
 * per second. The CPU-time figure is what one free core would give: wasm and cpu run on the main
 * thread only, so it is immune to other processes sharing the machine.
 */
async function measure(backend: string, samples: number): Promise<Throughput> {
  if (!(await tf.setBackend(backend))) {
    throw new Error(`backend ${backend} did not start`);
  }
  const model = buildLeNet();
  const xs = tf.randomUniform([samples, 28, 28, 1]);
  const ys = tf.randomUniform([samples, 1], 0, 10, 'int32').cast('float32');
  // Warm-up: kernel set-up, XNNPACK operator creation, optimizer slots.
  await model.fit(xs.slice(0, BATCH), ys.slice(0, BATCH), {
    batchSize: BATCH,
    epochs: 1,
    verbose: 0,
  });
  const start = performance.now();
  const startCpu = process.cpuUsage();
  await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, verbose: 0, shuffle: false });
  const seconds = (performance.now() - start) / 1000;
  const cpuUsage = process.cpuUsage(startCpu);
  const cpuSeconds = (cpuUsage.user + cpuUsage.system) / 1e6;
  if (values.profile) {
    await profileBatch(model, xs.slice(0, BATCH), ys.slice(0, BATCH));
  }
  tf.dispose([xs, ys]);
  model.dispose();
  return { wall: samples / seconds, cpu: samples / cpuSeconds };
}

/** Prints the kernels of one training step, slowest first. */
async function profileBatch(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): Promise<void> {
  const info = await tf.profile(() => model.trainOnBatch(xs, ys));
  const totals = new Map<string, number>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    totals.set(key, (totals.get(key) ?? 0) + ms);
  }
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 15);
  for (const [key, ms] of rows) {
    console.log(`${ms.toFixed(2).padStart(8)} ms  ${key}`);
  }
}

registerConvGradientKernels();
const samples = Number(values.samples);
const format = (t: Throughput): string =>
  `${t.wall.toFixed(0)} samples/s (${t.cpu.toFixed(0)} per CPU-second)`;
const wasm = await measure('wasm', samples);
console.log(`wasm: ${format(wasm)}, LeNet-5, batch ${BATCH}, ${samples} samples`);
const cpuSamples = Number(values['cpu-batches']) * BATCH;
if (cpuSamples > 0) {
  const cpu = await measure('cpu', cpuSamples);
  console.log(`cpu:  ${format(cpu)}, ${cpuSamples} samples`);
}
