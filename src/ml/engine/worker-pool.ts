import { Worker } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs';
import type { ModelSpec, Request, Response } from './protocol.ts';

const ENTRY = new URL('./worker-entry.js', import.meta.url);

/**
 * Engine worker threads, each with its own TF.js wasm backend (one core each; tfjs-backend-wasm's
 * own threads are off in Node). One request per worker at a time, answered in order.
 */
export class WorkerPool {
  private readonly workers: Worker[];
  private readonly queues: Array<
    Array<{ resolve: (r: Response) => void; reject: (e: Error) => void }>
  >;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`worker count must be a positive integer, got ${size}`);
    }
    this.queues = Array.from({ length: size }, () => []);
    this.workers = Array.from({ length: size }, (_, i) => {
      const worker = new Worker(ENTRY);
      worker.on('message', (response: Response) => {
        const pending = this.queues[i]!.shift();
        if (response.kind === 'error') {
          pending?.reject(new Error(`engine worker ${i}: ${response.message}`));
        } else {
          pending?.resolve(response);
        }
      });
      worker.on('error', (error) => {
        for (const pending of this.queues[i]!.splice(0)) pending.reject(error);
      });
      return worker;
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.workers.length;
  }

  /** Sends a request to worker `rank`; resolves with its answer. */
  request(rank: number, message: Request, transfer: ArrayBuffer[] = []): Promise<Response> {
    const worker = this.workers[rank];
    if (worker === undefined) {
      return Promise.reject(new RangeError(`no worker ${rank}`));
    }
    return new Promise((resolve, reject) => {
      this.queues[rank]!.push({ resolve, reject });
      worker.postMessage(message, transfer);
    });
  }

  /** Sends every worker the same request (structured-cloned to each). */
  broadcast(message: Request): Promise<Response[]> {
    return Promise.all(this.workers.map((_, rank) => this.request(rank, message)));
  }

  /** Stops the workers. */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A model's topology and weights as {@link ModelSpec}, for loading into workers. */
export function modelSpec(model: tf.LayersModel): ModelSpec {
  const weights = model.getWeights();
  return {
    topology: JSON.stringify(model.toJSON(null, false)),
    weights: weights.map((w) => w.dataSync() as Float32Array),
    shapes: weights.map((w) => [...w.shape]),
  };
}

/**
 * Splits `n` rows into `parts` contiguous ranges as equal as can be (the first ones one longer);
 * empty ranges are dropped.
 */
export function splitRows(n: number, parts: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    if (size > 0) ranges.push([start, start + size]);
    start += size;
  }
  return ranges;
}
