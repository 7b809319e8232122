/**
 * The engine-speed figures of `npm run bench` (issue "Engine speed"): training samples/s of
 * LeNet, CIFAR ResNet-20, the course's AlexNet and MobileNet-fashion, and inference images/s for 1,000 CIFAR images,
 * each with one engine worker and with one per core (src/ml/engine/), plus the same nets in
 * PyTorch (bench/pytorch/bench.py) when Debian's python3-torch is installed.
 *
 * Every figure comes with samples per CPU-second (process.cpuUsage over all threads), which other
 * processes on a shared machine do not inflate: wall-clock figures fall when they take cores.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { buildAlexNet } from '../src/ml/architectures/alexnet.ts';
import { buildLeNet } from '../src/ml/architectures/lenet.ts';
import { buildMobileNetLike } from '../src/ml/architectures/mobilenet-fashion.ts';
import { buildResNet20 } from '../src/ml/architectures/resnet20.ts';
import { createParallelModel } from '../src/ml/engine/parallel-model.ts';

export const BATCH = 128;
/** Warm-up time before each timed training figure, ms (see trainRate). */
const WARM_UP_MS = 1000;
const CIFAR_TRAIN = 50_000;

/** One engine figure. */
export interface EngineRow {
  readonly metric: string;
  readonly workers: number;
  /** Per wall-clock second. */
  readonly value: number;
  /** Per second of this process's CPU time (all threads). */
  readonly perCpuSecond: number;
  readonly unit: string;
  /** Ours / PyTorch's at the same thread count, wall-clock, when PyTorch ran. */
  ratioToPyTorch?: number;
  /** Ours / PyTorch's per CPU-second (the fair figure for one worker on a shared machine). */
  cpuRatioToPyTorch?: number;
}

interface Net {
  readonly name: 'lenet' | 'resnet20' | 'alexnet' | 'mobilenet';
  readonly build: () => tf.LayersModel;
  readonly inputShape: readonly number[];
}

const NETS: readonly Net[] = [
  { name: 'lenet', build: () => buildLeNet({ seed: 1 }), inputShape: [28, 28, 1] },
  { name: 'resnet20', build: () => buildResNet20({ seed: 1 }), inputShape: [32, 32, 3] },
  {
    name: 'alexnet',
    build: () => buildAlexNet({ seed: 1, normalization: 'none' }),
    inputShape: [32, 32, 3],
  },
  // MobileNet-fashion (depthwise separable blocks; the trainer's `mobilenet-fashion`).
  { name: 'mobilenet', build: () => buildMobileNetLike({ seed: 1 }), inputShape: [28, 28, 1] },
];

/** The engine figures, by name: each net's training, and ResNet-20's inference. */
export const ENGINE_FIGURES = ['lenet', 'resnet20', 'alexnet', 'mobilenet', 'inference'] as const;

function randomBatch(
  n: number,
  inputShape: readonly number[],
): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(n * inputShape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < x.length; i++) x[i] = Math.random();
  const y = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) y[i * 10 + Math.floor(Math.random() * 10)] = 1;
  return { x, y };
}

/** Runs `body` and returns [wall seconds, CPU seconds]. */
async function timed(body: () => Promise<void>): Promise<[number, number]> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await body();
  const cpu = process.cpuUsage(cpu0);
  return [(performance.now() - t0) / 1000, (cpu.user + cpu.system) / 1e6];
}

async function trainRate(net: Net, workers: number, steps: number): Promise<EngineRow> {
  const model = net.build();
  const parallel = await createParallelModel(model, { workers });
  model.dispose();
  try {
    await parallel.compile({
      loss: 'categoricalCrossentropy',
      optimizer: { name: 'adam', learningRate: 1e-3 },
    });
    const { x, y } = randomBatch(BATCH, net.inputShape);
    const xs = { values: x, shape: [BATCH, ...net.inputShape] };
    const ys = { values: y, shape: [BATCH, 10] };
    // Warm-up: kernel set-up and optimizer slots, and at least a second of steps so that V8 has
    // compiled the hot WebAssembly functions with its optimizing tier (a long call that starts in
    // the baseline tier stays there until it returns: LeNet ran 20-30% slower over its first
    // steps). A training run is many such steps; the steady state is what it sees.
    const warmUntil = performance.now() + WARM_UP_MS;
    do {
      await parallel.trainBatch(xs, ys);
    } while (performance.now() < warmUntil);
    const [wall, cpu] = await timed(async () => {
      for (let s = 0; s < steps; s++) await parallel.trainBatch(xs, ys);
    });
    const samples = steps * BATCH;
    return {
      metric: `${net.name}-train`,
      workers,
      value: samples / wall,
      perCpuSecond: samples / cpu,
      unit: 'samples/s',
    };
  } finally {
    await parallel.dispose();
  }
}

async function inferenceRate(net: Net, workers: number): Promise<EngineRow> {
  const model = net.build();
  const parallel = await createParallelModel(model, { workers });
  model.dispose();
  try {
    const { x } = randomBatch(1000, net.inputShape);
    const batch = { values: x, shape: [1000, ...net.inputShape] };
    await parallel.predict(batch, 250); // warm-up
    const [wall, cpu] = await timed(async () => {
      await parallel.predict(batch, 250);
    });
    return {
      metric: `${net.name}-inference 1000`,
      workers,
      value: 1000 / wall,
      perCpuSecond: 1000 / cpu,
      unit: 'images/s',
    };
  } finally {
    await parallel.dispose();
  }
}

export interface TorchResult {
  readonly net: string;
  readonly threads: number;
  readonly metric: 'train' | 'inference';
  readonly value: number;
  readonly perCpuSecond: number;
}

/** PyTorch's figures at the given thread counts, or undefined when python3-torch is absent. */
function pytorchFigures(
  threads: readonly number[],
  steps: number,
  nets: readonly string[],
): { torch: string; results: TorchResult[] } | undefined {
  const script = path.join(import.meta.dirname, 'pytorch', 'bench.py');
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
    } catch {
      continue;
    }
    const out = execFileSync(
      python,
      [script, '--threads', threads.join(','), '--steps', String(steps), '--nets', nets.join(',')],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    return JSON.parse(out) as { torch: string; results: TorchResult[] };
  }
  return undefined;
}

/**
 * Measures every engine figure with 1 worker and with one per core, then PyTorch's.
 *
 * @param steps timed training steps of batch 128 per net and worker count (LeNet: ten times as many).
 * @param figures which of {@link ENGINE_FIGURES} to measure (all by default)
 */
export async function engineFigures(
  steps: number,
  withPyTorch: boolean,
  figures: readonly string[] = ENGINE_FIGURES,
): Promise<{ rows: EngineRow[]; aside: string[]; torch?: string; torchResults?: TorchResult[] }> {
  const cores = availableParallelism();
  const counts = cores > 1 ? [1, cores] : [1];
  const rows: EngineRow[] = [];
  // PyTorch runs right after ours, net by net: this machine's speed drifts over minutes, and a
  // ratio should compare figures taken under the same conditions.
  let torch: { torch: string; results: TorchResult[] } | undefined;
  const peer = (nets: string[]) => {
    if (!withPyTorch) return;
    const figures = pytorchFigures(counts, steps, nets);
    if (figures === undefined) return;
    torch = { torch: figures.torch, results: [...(torch?.results ?? []), ...figures.results] };
  };
  for (const net of NETS.filter((n) => figures.includes(n.name))) {
    for (const workers of counts) {
      rows.push(await trainRate(net, workers, net.name === 'lenet' ? steps * 10 : steps));
    }
    peer([net.name]);
  }
  if (figures.includes('inference')) {
    const resnet = NETS[1]!;
    for (const workers of counts) rows.push(await inferenceRate(resnet, workers));
    peer(['inference']);
  }

  const aside: string[] = [];
  const best = (metric: string) =>
    Math.max(...rows.filter((r) => r.metric === metric).map((r) => r.value));
  if (figures.includes('alexnet')) {
    aside.push(
      `AlexNet CIFAR-10 epoch: ${(CIFAR_TRAIN / best('alexnet-train') / 60).toFixed(1)} min at the best rate`,
    );
  }
  const inference = rows.filter((r) => r.metric.startsWith('resnet20-inference'));
  if (inference.length === 2) {
    aside.push(
      `inference, ${cores} workers / 1: ${(inference[1]!.value / inference[0]!.value).toFixed(2)}x`,
    );
  }

  if (torch !== undefined) {
    for (const row of rows) {
      const [net = '', kind = ''] = row.metric.split(/-| /);
      const metric = kind === 'train' ? 'train' : 'inference';
      const peer = torch.results.find(
        (t) => t.net === net && t.metric === metric && t.threads === row.workers,
      );
      if (peer !== undefined) {
        row.ratioToPyTorch = row.value / peer.value;
        row.cpuRatioToPyTorch = row.perCpuSecond / peer.perCpuSecond;
      }
    }
  }
  return {
    rows,
    aside,
    ...(torch !== undefined && { torch: torch.torch, torchResults: torch.results }),
  };
}
