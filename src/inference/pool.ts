import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { UserError, USER_ERROR_IDS, type UserErrorId } from '../errors.ts';
import type { ExplainOptions, Explanation } from '../explain/explain-image.ts';
import type { ProbabilityChartInput } from '../imaging/chart.ts';
import type { ImageLimits } from '../imaging/decode.ts';
import type { LatencyOptions, ModelProfile } from '../ml/stats.ts';
import type {
  InferenceJob,
  InferenceWorkerData,
  JobResults,
  ServedVersion,
  WorkerModels,
  WorkerRequest,
  WorkerResponse,
} from './protocol.ts';

const ENTRY = new URL('./worker-entry.js', import.meta.url);

/** Deadlines per job kind, milliseconds, counted from the moment a worker takes the job. */
export interface JobDeadlines {
  /** Decode, preprocess and predict (default 20 s). */
  readonly classify: number;
  /** Grad-CAM, Grad-CAM++, saliency, SmoothGrad with the faithfulness check (default 60 s). */
  readonly explain: number;
  /** Model profiling for `/arch` and `/compare` (default 10 min). */
  readonly profile: number;
}

/** Options of {@link InferencePool}. */
export interface InferencePoolOptions extends WorkerModels {
  /** Inference worker threads (default: every core, `os.availableParallelism()`). */
  readonly workers?: number;
  /** Models each worker loads and warms up before taking jobs (the default model). */
  readonly preload?: readonly string[];
  /** Jobs allowed to wait for a worker; one more is refused with `server.busy` (default 64). */
  readonly maxQueue?: number;
  readonly deadlines?: Partial<JobDeadlines>;
  /**
   * Start the profiling lane's worker with the pool (default true); false starts it on the first
   * profile. It runs at the lowest scheduling priority (nice 19) either way.
   */
  readonly profiling?: boolean;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** Counters of what the pool did since it started. */
export interface PoolStats {
  readonly workers: number;
  /** Jobs waiting for an inference worker now. */
  readonly queued: number;
  /** Jobs running now. */
  readonly running: number;
  readonly completed: number;
  /** Jobs refused because the queue was full. */
  readonly refused: number;
  /** Jobs stopped at their deadline (each cost its worker, which was replaced). */
  readonly timedOut: number;
  /** Workers started to replace one that was terminated or died. */
  readonly replaced: number;
}

/** Per-job options. */
export interface JobOptions {
  /** This job's deadline instead of its kind's, milliseconds. */
  readonly deadlineMs?: number;
}

const DEFAULT_DEADLINES: JobDeadlines = { classify: 20_000, explain: 60_000, profile: 600_000 };

interface Pending {
  readonly request: WorkerRequest;
  readonly transfer: ArrayBuffer[];
  readonly deadlineMs: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** The queued job it runs now. */
  job?: Pending | undefined;
  started: number;
  timer?: NodeJS.Timeout | undefined;
  /** Out-of-band requests (reload, memory) answered by id. */
  readonly side: Map<number, Pending>;
}

/** Rebuilds an error a worker reported: a `UserError` stays one (its id and parameters). */
function toError(r: Extract<WorkerResponse, { ok: false }>): Error {
  const u = r.userError;
  if (u && (USER_ERROR_IDS as readonly string[]).includes(u.id)) {
    return new UserError(u.id as UserErrorId, u.message, u.params);
  }
  return new Error(`inference worker: ${r.message}`);
}

/**
 * A pool of inference worker threads (`worker.ts`), each with its own TF.js wasm backend (one
 * core) and its models loaded once: decoding, preprocessing, prediction, Grad-CAM and saliency
 * run there, so the event loop only moves bytes and every core works. Model profiling runs in
 * a lane of its own (one more worker, started on first use) so that it never holds up a photo.
 *
 * - Back-pressure: jobs wait in one FIFO queue of at most `maxQueue`; beyond it a job is refused
 *   with `UserError('server.busy', { seconds })`, the estimated wait.
 * - Deadlines: a job running longer than its kind's deadline is stopped by terminating its
 *   worker (libjpeg cannot be interrupted otherwise); a fresh worker replaces it and the job
 *   rejects with `UserError('job.timeout', { seconds })`.
 * - Model versions: {@link reload} loads the new files in every worker beside the jobs running
 *   there and swaps them in when loaded; no job is dropped or sees a half-loaded model.
 *
 * @example
 * const pool = new InferencePool({ modelsDir: 'models', dataDirs: [], preload: ['lenet-mnist'] });
 * await pool.ready();
 * const { result } = await pool.classify('lenet-mnist', bytes, limits); // result.label === '7'
 * await pool.close();
 */
export class InferencePool {
  private readonly slots: Slot[] = [];
  private profileSlot: Slot | undefined;
  private readonly queue: Pending[] = [];
  private readonly profileQueue: Pending[] = [];
  private readonly deadlines: JobDeadlines;
  private readonly maxQueue: number;
  private readonly data: InferenceWorkerData;
  private readonly log: InferencePoolOptions['logger'];
  private nextId = 1;
  private startFailures = 0;
  private closed = false;
  /** Exponentially weighted mean job time, ms, for the "try again in N s" estimate. */
  private meanMs = 500;
  private counters = { completed: 0, refused: 0, timedOut: 0, replaced: 0 };
  private readonly reloadListeners: ((modelId: string) => void)[] = [];
  /** Promoted versions (model id -> version and folder), handed to every worker started. */
  private readonly served: Record<string, ServedVersion> = {};

  constructor(options: InferencePoolOptions) {
    const size = options.workers ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`worker count must be a positive integer, got ${size}`);
    }
    this.deadlines = { ...DEFAULT_DEADLINES, ...options.deadlines };
    this.maxQueue = options.maxQueue ?? 64;
    this.log = options.logger;
    this.data = {
      modelsDir: options.modelsDir,
      dataDirs: [...options.dataDirs],
      preload: [...(options.preload ?? [])],
    };
    for (let i = 0; i < size; i++) this.slots.push(this.spawn(false));
    // Started now, not on the first /arch: starting a worker costs a core for a second or two.
    if (options.profiling !== false) this.profileSlot = this.spawn(true);
  }

  /** Resolves when every inference worker has loaded its preloaded models. */
  async ready(): Promise<void> {
    while ([...this.slots, ...(this.profileSlot ? [this.profileSlot] : [])].some((s) => !s.ready)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (this.closed) return;
    }
  }

  /** Number of inference workers. */
  get size(): number {
    return this.slots.length;
  }

  /** What the pool has done so far. */
  get stats(): PoolStats {
    return {
      workers: this.slots.length,
      queued: this.queue.length,
      running: this.slots.filter((s) => s.job).length,
      ...this.counters,
    };
  }

  /**
   * Decodes, preprocesses and classifies an image in a worker.
   * @throws {UserError} `server.busy`, `job.timeout`, `model.unknown`, `model.missing_files`,
   *   and the image errors of `src/imaging/decode.ts` and the photo pipelines.
   */
  classify(
    modelId: string,
    bytes: Uint8Array,
    limits: ImageLimits,
    topK = 3,
    options: JobOptions = {},
  ): Promise<JobResults['classify']> {
    // A copy of its own to transfer: a Buffer may be a view of a slab shared with others.
    const copy = new Uint8Array(bytes);
    const job = { kind: 'classify', modelId, bytes: copy, limits, topK } as const;
    return this.submit(this.queue, job, [copy.buffer], options);
  }

  /**
   * Explains a model's answer on an image in a worker (see `explainImage`).
   * @throws {UserError} as {@link classify}, and `argument.invalid` for an unknown layer or class.
   */
  explain(
    modelId: string,
    bytes: Uint8Array,
    limits: ImageLimits,
    options: ExplainOptions,
    jobOptions: JobOptions = {},
  ): Promise<Explanation> {
    const copy = new Uint8Array(bytes);
    const job = { kind: 'explain', modelId, bytes: copy, limits, options } as const;
    return this.submit(this.queue, job, [copy.buffer], jobOptions);
  }

  /**
   * Renders `/predict`'s probability chart (see `renderProbabilityChart`) in a worker.
   * @returns PNG bytes.
   * @throws {UserError} `server.busy`, `job.timeout`.
   */
  chart(input: ProbabilityChartInput): Promise<Uint8Array> {
    return this.submit(this.queue, { kind: 'chart', input }, []);
  }

  /**
   * Profiles a model (architecture statistics, measured speed) in the profiling lane: one worker
   * of its own, so that a photo never waits behind a measurement. Not cached here.
   */
  profile(modelId: string, latency: LatencyOptions = {}): Promise<ModelProfile> {
    this.profileSlot ??= this.spawn(true);
    return this.submit(this.profileQueue, { kind: 'profile', modelId, latency }, []);
  }

  /**
   * Loads model `modelId`'s files again in every worker and swaps the new version in once it is
   * loaded, without stopping the jobs in hand (they finish on the old version, which is then
   * freed). Workers started later load the new files anyway.
   * @returns the new version's metadata (from the first worker).
   * @throws {UserError} `model.unknown`, `model.missing_files`: the old version stays served.
   */
  async reload(modelId: string): Promise<JobResults['reload']> {
    const slots = [...this.slots, ...(this.profileSlot ? [this.profileSlot] : [])];
    const answers = await Promise.all(
      slots.map((s) => this.side<JobResults['reload']>(s, { kind: 'reload', modelId })),
    );
    for (const listener of this.reloadListeners) listener(modelId);
    this.log?.info({ model: modelId, workers: slots.length }, 'model reloaded in the pool');
    return answers[0]!;
  }

  /**
   * Serves `version` of model `modelId` from `dir` in every worker (a promotion or rollback,
   * issue 14; `dir` absent for the shipped version `0`): each worker loads and warms it beside the
   * job in hand and swaps it in, the old version freed after that job; workers started later
   * load it too. Listeners of {@link onReload} are called.
   * @throws {UserError} `model.missing_files` when the folder cannot be loaded: the old version
   *   stays served.
   */
  async serve(modelId: string, version: string, dir?: string): Promise<JobResults['reload']> {
    const serve = dir === undefined ? { version } : { version, dir };
    const before = this.served[modelId];
    this.served[modelId] = serve;
    const slots = [...this.slots, ...(this.profileSlot ? [this.profileSlot] : [])];
    try {
      const answers = await Promise.all(
        slots.map((s) => this.side<JobResults['reload']>(s, { kind: 'reload', modelId, serve })),
      );
      for (const listener of this.reloadListeners) listener(modelId);
      this.log?.info({ model: modelId, version, workers: slots.length }, 'model version served');
      return answers[0]!;
    } catch (e) {
      if (before) this.served[modelId] = before;
      else delete this.served[modelId];
      throw e;
    }
  }

  /** The version of `modelId` the pool serves (`0`: the shipped folder). */
  servedVersion(modelId: string): string {
    return this.served[modelId]?.version ?? '0';
  }

  /** Calls `listener` after each {@link reload} (e.g. to forget a cached profile). */
  onReload(listener: (modelId: string) => void): void {
    this.reloadListeners.push(listener);
  }

  /** `tf.memory()` of each inference worker (tensors and bytes held by TF.js). */
  memory(): Promise<JobResults['memory'][]> {
    return Promise.all(
      this.slots.map((s) => this.side<JobResults['memory']>(s, { kind: 'memory' })),
    );
  }

  /**
   * Refuses new jobs, lets those running finish (up to `timeoutMs`), rejects those still
   * waiting, and terminates the workers.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    for (const p of [...this.queue.splice(0), ...this.profileQueue.splice(0)]) {
      p.reject(new Error('the inference pool is closing'));
    }
    const until = Date.now() + timeoutMs;
    while (this.slots.some((s) => s.job) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const all = [...this.slots, ...(this.profileSlot ? [this.profileSlot] : [])];
    for (const s of all) this.fail(s, new Error('the inference pool closed'));
    await Promise.all(all.map((s) => s.worker.terminate()));
  }

  private submit<T>(
    queue: Pending[],
    job: InferenceJob,
    transfer: ArrayBuffer[],
    options: JobOptions = {},
  ): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the inference pool is closed'));
    if (queue === this.queue && queue.length >= this.maxQueue) {
      this.counters.refused++;
      const seconds = Math.max(
        1,
        Math.ceil(((queue.length + 1) * this.meanMs) / this.slots.length / 1000),
      );
      return Promise.reject(
        new UserError('server.busy', `${queue.length} jobs are waiting`, { count: seconds }),
      );
    }
    const deadlineMs =
      options.deadlineMs ??
      this.deadlines[
        job.kind === 'profile' ? 'profile' : job.kind === 'explain' ? 'explain' : 'classify'
      ];
    return new Promise<T>((resolve, reject) => {
      queue.push({
        request: { ...job, id: this.nextId++ },
        transfer,
        deadlineMs,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      this.dispatch();
    });
  }

  /** Hands waiting jobs to idle, ready workers. */
  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.ready && !slot.job && this.queue.length > 0) this.start(slot, this.queue.shift()!);
    }
    const p = this.profileSlot;
    if (p?.ready && !p.job && this.profileQueue.length > 0)
      this.start(p, this.profileQueue.shift()!);
  }

  private start(slot: Slot, job: Pending): void {
    slot.job = job;
    slot.started = performance.now();
    slot.timer = setTimeout(() => this.timeOut(slot), job.deadlineMs);
    slot.worker.postMessage(job.request, job.transfer);
  }

  /** An out-of-band request (reload, memory): sent at once, beside the job in hand. */
  private side<T>(slot: Slot, job: InferenceJob): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const request = { ...job, id: this.nextId++ };
      slot.side.set(request.id, {
        request,
        transfer: [],
        deadlineMs: 0,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      slot.worker.postMessage(request);
    });
  }

  private spawn(profileLane: boolean): Slot {
    const worker = new Worker(ENTRY, {
      // The profiling lane loads models on demand: it must not delay the first photo's worker.
      workerData: {
        ...this.data,
        served: { ...this.served },
        ...(profileLane ? { preload: [], lowPriority: true } : {}),
      },
    });
    const slot: Slot = { worker, ready: false, started: 0, side: new Map() };
    worker.on('message', (r: WorkerResponse) => this.onMessage(slot, r));
    worker.on('error', (e) => {
      this.log?.error({ err: e }, 'inference worker failed');
      this.replace(slot, e);
    });
    worker.on('exit', (code) => {
      if (!this.closed && this.isCurrent(slot)) {
        this.replace(slot, new Error(`inference worker exited with code ${code}`));
      }
    });
    return slot;
  }

  private isCurrent(slot: Slot): boolean {
    return this.slots.includes(slot) || this.profileSlot === slot;
  }

  private onMessage(slot: Slot, r: WorkerResponse): void {
    if (r.id === -1) {
      slot.ready = true;
      this.dispatch();
      return;
    }
    const side = slot.side.get(r.id);
    if (side) {
      slot.side.delete(r.id);
      if (r.ok) side.resolve(r.value);
      else side.reject(toError(r));
      return;
    }
    const job = slot.job;
    if (job?.request.id !== r.id) return; // a stale answer of a job already timed out
    clearTimeout(slot.timer);
    slot.job = undefined;
    this.counters.completed++;
    this.meanMs = 0.8 * this.meanMs + 0.2 * (performance.now() - slot.started);
    if (r.ok) job.resolve(r.value);
    else job.reject(toError(r));
    this.dispatch();
  }

  private timeOut(slot: Slot): void {
    const job = slot.job;
    if (!job) return;
    this.counters.timedOut++;
    const seconds = Math.round(job.deadlineMs / 1000);
    this.log?.warn(
      { kind: job.request.kind, deadlineMs: job.deadlineMs },
      'inference job over its deadline: worker terminated',
    );
    this.replace(
      slot,
      new UserError('job.timeout', `${job.request.kind} ran over ${job.deadlineMs} ms`, {
        count: seconds,
      }),
    );
  }

  /** Rejects what `slot` holds with `error`. */
  private fail(slot: Slot, error: Error): void {
    clearTimeout(slot.timer);
    slot.job?.reject(error);
    slot.job = undefined;
    for (const p of slot.side.values()) p.reject(error);
    slot.side.clear();
  }

  /** Terminates `slot`'s worker, fails its jobs with `error` and starts a fresh worker. */
  private replace(slot: Slot, error: Error): void {
    if (!this.isCurrent(slot)) return;
    this.fail(slot, error);
    void slot.worker.terminate();
    if (this.closed) return;
    this.counters.replaced++;
    this.startFailures = slot.ready ? 0 : this.startFailures + 1;
    if (this.startFailures >= 5) {
      // A worker that cannot start will not start on the sixth try either: stop, and say so.
      this.log?.error({ err: error }, 'inference workers cannot start: the pool is closing');
      void this.close(0);
      return;
    }
    const fresh = this.spawn(slot === this.profileSlot);
    if (slot === this.profileSlot) this.profileSlot = fresh;
    else this.slots[this.slots.indexOf(slot)] = fresh;
  }
}
