/**
 * A tiny concurrency limiter: at most `concurrency` tasks run at once, the rest wait in arrival
 * order. Used to serialise classification: TF.js runs on one thread, so thirty photos sent at the
 * start of a lab are answered one after another (each quickly) instead of all slowly at once
 * with thirty decoded images in memory.
 */

/** Runs tasks with bounded concurrency. */
export interface TaskQueue {
  /** Runs `task` when a slot is free; settles as the task does. */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Tasks running or waiting. */
  readonly size: number;
  /** Resolves when no task is running or waiting (at once when none is). */
  idle(): Promise<void>;
}

/**
 * Creates a {@link TaskQueue}.
 * @param concurrency tasks allowed to run at once, at least 1.
 * @example
 * const queue = createTaskQueue(1);
 * const [a, b] = await Promise.all([queue.run(classifyA), queue.run(classifyB)]); // one at a time
 */
export function createTaskQueue(concurrency = 1): TaskQueue {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  let running = 0;
  const waiting: (() => void)[] = [];
  const idleWaiters: (() => void)[] = [];
  // A finished task hands its slot straight to the next waiting one, so that the queue is never
  // seen empty between the two.
  const next = (): void => {
    const waiter = waiting.shift();
    if (waiter) return waiter();
    running--;
    if (running === 0) for (const w of idleWaiters.splice(0)) w();
  };
  return {
    get size() {
      return running + waiting.length;
    },
    idle() {
      if (running === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
      else running++;
      try {
        return await task();
      } finally {
        next();
      }
    },
  };
}
