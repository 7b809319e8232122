/** How long a worker waits for its peers before giving up (a peer died mid-step). */
const TIMEOUT_MS = 10 * 60 * 1000;

/**
 * Blocks until `parties` threads have called this with the same state (a reusable,
 * generation-counting barrier over two int32s of shared memory: `[arrived, generation]`).
 * Only for worker threads: the main thread may not block on `Atomics.wait`.
 *
 * @throws {Error} when the others do not arrive within ten minutes (a peer failed), rather than
 *   hanging the worker for good.
 */
export function barrierWait(state: Int32Array, parties: number): void {
  const generation = Atomics.load(state, 1);
  if (Atomics.add(state, 0, 1) === parties - 1) {
    Atomics.store(state, 0, 0);
    Atomics.add(state, 1, 1);
    Atomics.notify(state, 1);
    return;
  }
  const deadline = Date.now() + TIMEOUT_MS;
  while (Atomics.load(state, 1) === generation) {
    const left = deadline - Date.now();
    if (left <= 0 || Atomics.wait(state, 1, generation, left) === 'timed-out') {
      throw new Error(`engine barrier: ${parties - 1} peer worker(s) did not arrive in time`);
    }
  }
}
