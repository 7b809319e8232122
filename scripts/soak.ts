/**
 * `npm run soak`: no leaks. After a warm-up, 10,000 predictions and 1,000 Grad-CAMs through the
 * inference pool (decode, preprocess, predict; decode, Grad-CAM with the blur check),
 * sampling `tf.memory().numTensors` of every worker and the process's resident memory as it
 * goes. Prints JSON, then a table: tensors and RSS after warm-up, at each tenth, and at the end,
 * with the growth of RSS over the second half (flat: within noise).
 *
 * Options: --predictions N (10000), --gradcams N (1000), --workers N (every core).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { PROJECT_ROOT } from '../src/config.ts';
import { InferencePool } from '../src/inference/pool.ts';

const { values } = parseArgs({
  options: {
    predictions: { type: 'string', default: '10000' },
    gradcams: { type: 'string', default: '1000' },
    workers: { type: 'string' },
  },
});
const PREDICTIONS = Number(values.predictions);
const GRADCAMS = Number(values.gradcams);
const MODEL = 'lenet-mnist';
const limits = { maxBytes: 20_000_000, maxPixels: 40_000_000 };

interface Sample {
  readonly phase: string;
  readonly done: number;
  readonly tensors: number;
  readonly rssMB: number;
}

async function main(): Promise<void> {
  const pool = new InferencePool({
    modelsDir: path.join(PROJECT_ROOT, 'models'),
    dataDirs: [],
    ...(values.workers === undefined ? {} : { workers: Number(values.workers) }),
    preload: [MODEL],
    profiling: false,
  });
  await pool.ready();
  const photos = await Promise.all(
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => readFile(path.join(PROJECT_ROOT, 'img', `${d}.png`))),
  );
  const samples: Sample[] = [];
  const sample = async (phase: string, done: number): Promise<void> => {
    const tensors = (await pool.memory()).reduce((a, m) => a + m.numTensors, 0);
    samples.push({ phase, done, tensors, rssMB: Math.round(process.memoryUsage().rss / 1e6) });
    console.error(`${phase} ${done}: ${tensors} tensors, RSS ${samples.at(-1)!.rssMB} MB`);
  };

  /** Runs `n` jobs, `pool.size` at a time, sampling at each tenth. */
  async function run(
    phase: string,
    n: number,
    job: (i: number) => Promise<unknown>,
  ): Promise<void> {
    let next = 0;
    let done = 0;
    const tenth = Math.max(1, Math.floor(n / 10));
    const lane = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        await job(i);
        done++;
        if (done % tenth === 0) await sample(phase, done);
      }
    };
    await Promise.all(Array.from({ length: pool.size * 2 }, lane));
  }

  const predict = (i: number): Promise<unknown> => pool.classify(MODEL, photos[i % 10]!, limits);
  const gradcam = (i: number): Promise<unknown> =>
    pool.explain(MODEL, photos[i % 10]!, limits, { method: 'gradcam' });

  const t0 = performance.now();
  await run('warm-up', 200, predict);
  await run('warm-up', 20, gradcam);
  await sample('after warm-up', 0);
  await run('predict', PREDICTIONS, predict);
  await run('gradcam', GRADCAMS, gradcam);
  await sample('end', PREDICTIONS + GRADCAMS);
  const seconds = (performance.now() - t0) / 1000;

  const warm = samples.find((s) => s.phase === 'after warm-up')!;
  const end = samples.at(-1)!;
  const predictSamples = samples.filter((s) => s.phase === 'predict');
  const half = predictSamples[Math.floor(predictSamples.length / 2) - 1] ?? warm;
  const result = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(1)),
    workers: pool.size,
    predictions: PREDICTIONS,
    gradcams: GRADCAMS,
    seconds: Math.round(seconds),
    tensorsAfterWarmUp: warm.tensors,
    tensorsAtEnd: end.tensors,
    tensorsMax: Math.max(...samples.filter((s) => s.phase !== 'warm-up').map((s) => s.tensors)),
    rssAfterWarmUpMB: warm.rssMB,
    rssAtEndMB: end.rssMB,
    rssMaxMB: Math.max(...samples.map((s) => s.rssMB)),
    rssGrowthSecondHalfOfPredictionsMB: (predictSamples.at(-1)?.rssMB ?? warm.rssMB) - half.rssMB,
    flat: end.tensors === warm.tensors,
    samples,
  };
  console.log(JSON.stringify(result, null, 2));
  const table = new Table({ head: ['phase', 'done', 'tensors (all workers)', 'RSS, MB'] });
  for (const s of samples) table.push([s.phase, s.done, s.tensors, s.rssMB]);
  console.log(table.toString());
  await pool.close();
  process.exitCode = result.flat ? 0 : 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
