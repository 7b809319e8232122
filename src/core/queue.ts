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
  const next = (): void => {
    running--;
    waiting.shift()?.();
  };
  return {
    get size() {
      return running + waiting.length;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
      running++;
      try {
        return await task();
      } finally {
        next();
      }
    },
  };
}
