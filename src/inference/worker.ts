/**
 * One inference worker: its own TF.js on the wasm backend (one core), the models loaded once,
 * and every step of answering a photo that costs CPU: decoding, preprocessing, prediction,
 * Grad-CAM and saliency, and model profiling. Answers the {@link InferencePool}'s jobs one at a
 * time (the pool sends one at a time; `reload` may arrive beside a job).
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { isUserError } from '../errors.ts';
import { explainImage } from '../explain/explain-image.ts';
import { renderProbabilityChart } from '../imaging/chart.ts';
import { registerConvGradientKernels } from '../ml/kernels/conv-grads.ts';
import { classifyImage } from '../ml/classify.ts';
import { ModelRegistry, type LoadedModel } from '../ml/registry.ts';
import { profileModel } from '../ml/stats.ts';
import type {
  InferenceWorkerData,
  JobResults,
  ServedVersion,
  WorkerRequest,
  WorkerResponse,
} from './protocol.ts';

const port = parentPort;
if (port === null) throw new Error('inference/worker.ts must run in a worker thread');
const data = workerData as InferenceWorkerData;

registerConvGradientKernels();
if (data.lowPriority === true) {
  try {
    // On Linux a nice value belongs to a thread: setpriority(PRIO_PROCESS, 0) (what libuv calls
    // for the current "process") changes this worker thread alone, so profiling yields the
    // cores to the photo workers and the event loop.
    setPriority(19);
  } catch {
    // not permitted here: profiling still runs, at normal priority
  }
}

/** The versions served instead of the shipped folders, as the pool last said (issue 14). */
const served = new Map<string, ServedVersion>(Object.entries(data.served ?? {}));

/**
 * Loads the served version of model `id` with a fresh registry: the main registry's cache must
 * not hand back the old version.
 */
async function loadServed(id: string): Promise<LoadedModel> {
  const registry = new ModelRegistry(data.modelsDir, { dataDirs: data.dataDirs });
  const version = served.get(id);
  // Nothing is loaded yet in a fresh registry: serve() only records the folder to load.
  if (version) await registry.serve(id, version.version, version.dir);
  return registry.get(id);
}

const models = new Map<string, Promise<LoadedModel>>();
/** The job running now, so that a replaced model is disposed only after it. */
let running: Promise<unknown> = Promise.resolve();

function model(id: string): Promise<LoadedModel> {
  let p = models.get(id);
  if (!p) {
    p = loadServed(id);
    models.set(id, p);
    p.catch(() => models.delete(id));
  }
  return p;
}

async function reload(id: string, serve?: ServedVersion): Promise<JobResults['reload']> {
  const before = served.get(id);
  if (serve) served.set(id, serve);
  let next: LoadedModel;
  try {
    next = await loadServed(id);
  } catch (e) {
    // The new version cannot be loaded: keep serving the old one.
    if (before) served.set(id, before);
    else served.delete(id);
    throw e;
  }
  const old = models.get(id);
  models.set(id, Promise.resolve(next));
  if (old) {
    // The job in hand may still use the old weights: free them after it.
    void running.finally(async () => {
      try {
        (await old).model.dispose();
      } catch {
        // a failed load holds nothing
      }
    });
  }
  return { meta: next.meta, version: next.version };
}

async function run(job: WorkerRequest): Promise<JobResults[keyof JobResults]> {
  switch (job.kind) {
    case 'classify': {
      const loaded = await model(job.modelId);
      const result = await classifyImage(loaded, job.bytes, job.limits, job.topK);
      return { meta: loaded.meta, version: loaded.version, result };
    }
    case 'explain':
      return explainImage(await model(job.modelId), job.bytes, job.limits, job.options);
    case 'profile':
      return profileModel(await model(job.modelId), job.latency);
    case 'chart':
      return new Uint8Array(await renderProbabilityChart(job.input));
    case 'reload':
      return reload(job.modelId, job.serve);
    case 'memory': {
      const m = tf.memory();
      return { numTensors: m.numTensors, numBytes: m.numBytes };
    }
  }
}

function answer(job: WorkerRequest, p: Promise<JobResults[keyof JobResults]>): void {
  p.then(
    (value) => port!.postMessage({ id: job.id, ok: true, value } satisfies WorkerResponse),
    (e: unknown) => {
      const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
      port!.postMessage({
        id: job.id,
        ok: false,
        message,
        ...(isUserError(e)
          ? { userError: { id: e.id, message: e.message, params: e.params } }
          : {}),
      } satisfies WorkerResponse);
    },
  );
}

async function start(): Promise<void> {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not start');
  await tf.ready();
  for (const id of data.preload) {
    try {
      const loaded = await model(id);
      // One prediction compiles the kernels: the first photo should not pay for it.
      const shape = loaded.model.inputs[0]!.shape.slice(1).map((d) => d ?? 1);
      tf.tidy(() => {
        loaded.model.predict(tf.zeros([1, ...shape]));
      });
    } catch {
      // answered per job (model.unknown, model.missing_files)
    }
  }
  port!.on('message', (job: WorkerRequest) => {
    const p = run(job);
    if (job.kind !== 'reload' && job.kind !== 'memory') running = p.catch(() => undefined);
    answer(job, p);
  });
  port!.postMessage({ id: -1, ok: true, value: 'ready' } satisfies WorkerResponse);
}

void start();
