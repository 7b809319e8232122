/**
 * `npm run bench`: the project's speed figures in one run, printed as JSON and then as a table.
 *
 * - LeNet training samples/s on each backend that starts here (wasm with this project's
 *   conv-gradient kernels; cpu for a few batches, it is slow; tensorflow when tfjs-node exists);
 * - photo-to-answer latency p50/p95, ms: decode + preprocess + inference of the shipped LeNet on
 *   the photos in img/;
 * - inference images/s for one batch of 1,000 digits;
 * - Grad-CAM latency per image, p50, ms: the map alone, and photo to explanation (decode,
 *   preprocess, map, regions, the 7-inference blur check) for LeNet and, when a data folder
 *   holds it, the 224x224 MobileNet (on the same photos: the cost does not depend on content).
 *
 * - inference-pool throughput, photos/s with 1 worker thread and with 2, and the ratio
 *   (`bench/inference-pool.ts`).
 *
 * Options: --pool-only (just the pool figure), --pool-jobs N (photos per pool size, default
 * 600), --samples N (training samples per backend, default 4096), --repeats N (latency passes
 * over img/, default 5), --steps N (timed engine steps per net, default 3), --skip-pytorch,
 * --engine lenet,resnet20,alexnet,mobilenet,inference (which engine figures, default all), --engine-only
 * (skip the app figures).
 */
import { readFile, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { PROJECT_ROOT, loadConfig } from '../src/config.ts';
import { buildLeNet } from '../src/ml/architectures/lenet.ts';
import { initBackend } from '../src/ml/backend.ts';
import { explainImage } from '../src/explain/explain-image.ts';
import { classifyImage } from '../src/ml/classify.ts';
import type { ImageLimits } from '../src/imaging/decode.ts';
import { IMAGENET_MODEL_ID } from '../src/ml/imagenet.ts';
import { ModelRegistry } from '../src/ml/registry.ts';
import { ENGINE_FIGURES, engineFigures } from './engine.ts';
import { poolThroughput } from './inference-pool.ts';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '4096' },
    repeats: { type: 'string', default: '5' },
    steps: { type: 'string', default: '3' },
    'skip-pytorch': { type: 'boolean', default: false },
    engine: { type: 'string', default: ENGINE_FIGURES.join(',') },
    'engine-only': { type: 'boolean', default: false },
    'pool-only': { type: 'boolean', default: false },
    'pool-jobs': { type: 'string', default: '600' },
  },
});
const BATCH = 128;

interface Row {
  readonly metric: string;
  readonly backend: string;
  readonly value: number;
  readonly unit: string;
}

async function trainThroughput(backend: string, samples: number): Promise<number> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  const model = buildLeNet({ seed: 1 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const x = tf.randomUniform([BATCH, 28, 28, 1]);
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32'), 10).toFloat());
  await model.trainOnBatch(x, y); // warm-up: operator creation, optimizer slots
  const steps = Math.max(1, Math.round(samples / BATCH));
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await model.trainOnBatch(x, y);
  const s = (performance.now() - t0) / 1000;
  tf.dispose([x, y]);
  model.dispose();
  return (steps * BATCH) / s;
}

/** The photos of img/ (the project's own digits). */
async function readPhotos(): Promise<Buffer[]> {
  const imgDir = path.join(PROJECT_ROOT, 'img');
  const files = (await readdir(imgDir))
    .filter((f) => f.endsWith('.png'))
    .map((f) => path.join(imgDir, f));
  return Promise.all(files.map((f) => readFile(f)));
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** The inference pool's figure: 1 worker, 2 workers, and the ratio. */
async function poolFigure(photos: readonly Uint8Array[], limits: ImageLimits): Promise<Row[]> {
  const figures = await poolThroughput(photos, limits, Number(values['pool-jobs']));
  return [
    ...figures.rows.map((r) => ({
      metric: `inference-pool ${r.workers} worker${r.workers === 1 ? '' : 's'}`,
      backend: 'wasm',
      value: r.photosPerSecond,
      unit: 'photos/s',
    })),
    { metric: 'inference-pool speed-up', backend: 'wasm', value: figures.speedup, unit: 'x' },
  ];
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (values['pool-only']) {
    const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
    const rows = await poolFigure(await readPhotos(), limits);
    console.log(JSON.stringify({ cores: availableParallelism(), results: rows }, null, 2));
    console.table(rows.map((r) => ({ ...r, value: Number(r.value.toFixed(2)) })));
    return;
  }
  const info = await initBackend({ backend: config.TFJS_BACKEND });
  // The engine's worker threads first, in a process that has done nothing else yet: measured
  // after the photo and Grad-CAM figures (sharp, the registry), LeNet's training figure came out
  // 25-35% lower than in a fresh process, while PyTorch runs in a process of its own.
  const figures = values.engine.split(',');
  const unknown = figures.filter((f) => !(ENGINE_FIGURES as readonly string[]).includes(f));
  if (unknown.length > 0) {
    throw new Error(
      `--engine: unknown ${unknown.join(', ')} (one of ${ENGINE_FIGURES.join(', ')})`,
    );
  }
  const engine = await engineFigures(Number(values.steps), !values['skip-pytorch'], figures);
  if (values['engine-only']) {
    console.log(JSON.stringify({ backend: info, engine }, null, 2));
    printEngine(engine);
    return;
  }
  const samples = Number(values.samples);
  const rows: Row[] = [];
  const backends = ['tensorflow', 'wasm', 'cpu'].filter((b) => tf.findBackendFactory(b) !== null);
  for (const b of backends) {
    const n = b === 'cpu' ? BATCH * 2 : samples;
    try {
      rows.push({
        metric: 'lenet-train',
        backend: b,
        value: await trainThroughput(b, n),
        unit: 'samples/s',
      });
    } catch (e) {
      console.error(`${b}: ${(e as Error).message}`);
    }
  }
  await tf.setBackend(info.name);

  const registry = ModelRegistry.fromConfig(config);
  const loaded = await registry.get('lenet-mnist');
  const photos = await readPhotos();
  const files = photos;
  const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
  await classifyImage(loaded, photos[0]!, limits); // warm-up
  const ms: number[] = [];
  for (let r = 0; r < Number(values.repeats); r++) {
    for (const bytes of photos) {
      const t0 = performance.now();
      await classifyImage(loaded, bytes, limits);
      ms.push(performance.now() - t0);
    }
  }
  ms.sort((a, b) => a - b);
  rows.push({
    metric: 'photo-to-answer p50',
    backend: info.name,
    value: percentile(ms, 0.5),
    unit: 'ms',
  });
  rows.push({
    metric: 'photo-to-answer p95',
    backend: info.name,
    value: percentile(ms, 0.95),
    unit: 'ms',
  });

  const x = tf.randomUniform([1000, 28, 28, 1]);
  tf.tidy(() => loaded.model.predict(x.slice(0, 10)));
  const t0 = performance.now();
  const y = loaded.model.predict(x) as tf.Tensor;
  await y.data();
  const s = (performance.now() - t0) / 1000;
  tf.dispose([x, y]);
  rows.push({
    metric: 'lenet-inference batch 1000',
    backend: info.name,
    value: 1000 / s,
    unit: 'images/s',
  });

  const ids = (await registry.list()).map((m) => m.id);
  for (const id of ['lenet-mnist', IMAGENET_MODEL_ID].filter((m) => ids.includes(m))) {
    const model = await registry.get(id);
    const mapMs: number[] = [];
    const totalMs: number[] = [];
    await explainImage(model, photos[0]!, limits, { method: 'gradcam' }); // warm-up
    for (const bytes of photos) {
      const e = await explainImage(model, bytes, limits, { method: 'gradcam' });
      mapMs.push(e.ms.map);
      totalMs.push(e.ms.total);
    }
    mapMs.sort((a, b) => a - b);
    totalMs.sort((a, b) => a - b);
    rows.push({
      metric: `${id} grad-cam map p50`,
      backend: info.name,
      value: percentile(mapMs, 0.5),
      unit: 'ms',
    });
    rows.push({
      metric: `${id} grad-cam photo-to-explanation p50`,
      backend: info.name,
      value: percentile(totalMs, 0.5),
      unit: 'ms',
    });
  }
  await registry.dispose();
  rows.push(...(await poolFigure(photos, limits)));

  console.log(
    JSON.stringify({ backend: info, photos: files.length, results: rows, engine }, null, 2),
  );
  console.table(rows.map((r) => ({ ...r, value: Number(r.value.toFixed(1)) })));
  printEngine(engine);
}

function printEngine(engine: Awaited<ReturnType<typeof engineFigures>>): void {
  console.table(
    engine.rows.map((r) => ({
      metric: r.metric,
      workers: r.workers,
      value: Number(r.value.toFixed(1)),
      'per CPU-second': Number(r.perCpuSecond.toFixed(1)),
      unit: r.unit,
      'vs PyTorch': r.ratioToPyTorch === undefined ? '' : `${r.ratioToPyTorch.toFixed(2)}x`,
      'vs PyTorch per CPU-s':
        r.cpuRatioToPyTorch === undefined ? '' : `${r.cpuRatioToPyTorch.toFixed(2)}x`,
    })),
  );
  for (const line of engine.aside) console.log(line);
  if (engine.torch !== undefined)
    console.log(`PyTorch ${engine.torch}, same nets, batch and threads`);
}

await main();
