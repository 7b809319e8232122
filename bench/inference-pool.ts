/**
 * The inference pool's throughput, photos classified per second (decode, preprocess, predict
 * of the shipped LeNet, in worker threads), with 1 worker and with 2, measured one after the
 * other in the same run; the ratio is the pool's scaling on two cores.
 */
import path from 'node:path';
import { PROJECT_ROOT } from '../src/config.ts';
import type { ImageLimits } from '../src/imaging/decode.ts';
import { InferencePool } from '../src/inference/pool.ts';

/** One figure per worker count, and the ratio of the last to the first. */
export interface PoolFigures {
  readonly rows: { readonly workers: number; readonly photosPerSecond: number }[];
  /** photos/s with the most workers over photos/s with one. */
  readonly speedup: number;
}

/**
 * Classifies `jobs` photos through a pool of each size in `sizes`, keeping twice as many jobs in
 * flight as there are workers (so no worker waits for the event loop), after a warm-up.
 */
export async function poolThroughput(
  photos: readonly Uint8Array[],
  limits: ImageLimits,
  jobs = 600,
  sizes: readonly number[] = [1, 2],
): Promise<PoolFigures> {
  const rows: PoolFigures['rows'] = [];
  for (const workers of sizes) {
    const pool = new InferencePool({
      modelsDir: path.join(PROJECT_ROOT, 'models'),
      dataDirs: [],
      workers,
      preload: ['lenet-mnist'],
      profiling: false,
    });
    await pool.ready();
    const run = async (n: number): Promise<number> => {
      let next = 0;
      const t0 = performance.now();
      const lane = async (): Promise<void> => {
        while (next < n) {
          const i = next++;
          await pool.classify('lenet-mnist', photos[i % photos.length]!, limits);
        }
      };
      await Promise.all(Array.from({ length: workers * 2 }, lane));
      return n / ((performance.now() - t0) / 1000);
    };
    await run(workers * 20); // warm-up: every worker compiles its kernels
    rows.push({ workers, photosPerSecond: await run(jobs) });
    await pool.close();
  }
  return { rows, speedup: rows.at(-1)!.photosPerSecond / rows[0]!.photosPerSecond };
}
