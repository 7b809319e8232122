/**
 * Runs one training job in a fresh child process, with the shape of `runTrainingJob`
 * (`spec, { signal, onProgress }`): training memory goes back to the system when the job ends,
 * a crash of the engine cannot take the worker down, and cancel kills the process at once.
 * BullMQ's sandboxed processors reuse their child processes between jobs, so the BullMQ worker
 * calls this too instead of relying on them.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  JobFailure,
  type FromChild,
  type JobProgress,
  type JobSpec,
  type ToChild,
} from './protocol.ts';

/** What a job run in a child reports. */
export interface ChildJobCallbacks {
  onBackend?(backend: string, device: string): void;
  onProgress?(progress: JobProgress): void;
  /** Called once with the child's pid after it started (tests kill it to play a dead worker). */
  onSpawn?(pid: number): void;
}

/** What a finished job in a child returns. */
export type ChildJobResult = Extract<FromChild, { type: 'done' }>;

/** A function that runs a job: {@link runJobInChild}, or a stand-in in tests. */
export type JobRunner = (
  spec: JobSpec,
  options: { readonly signal: AbortSignal; readonly callbacks: ChildJobCallbacks },
) => Promise<ChildJobResult>;

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
/** tsx's ESM loader, by URL, so the child finds it whatever its working folder. */
const TSX = import.meta.resolve('tsx');

/**
 * Forks `child.ts` (TypeScript through tsx's loader), sends the spec, relays its reports.
 * @throws {JobFailure} with the reason the child gave (`nan`, `dataset`, `disk`...), or `worker`
 *   when the process died without one (killed, out of memory).
 * @throws the signal's reason when `signal` aborts (the child is killed with SIGKILL).
 */
export const runJobInChild: JobRunner = (spec, { signal, callbacks }) =>
  new Promise<ChildJobResult>((resolve, reject) => {
    signal.throwIfAborted();
    const child = fork(CHILD, [], {
      execArgv: ['--import', TSX],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(() => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) callbacks.onSpawn?.(child.pid);
    child.on('message', (m: FromChild) => {
      if (m.type === 'backend') callbacks.onBackend?.(m.backend, m.device);
      else if (m.type === 'progress') callbacks.onProgress?.(m.progress);
      else if (m.type === 'done') finish(() => resolve(m));
      else finish(() => reject(new JobFailure(m.reason, m.message, m.command, m.params)));
    });
    child.on('error', (e) => finish(() => reject(new JobFailure('worker', e.message))));
    child.on('exit', (code, sig) =>
      finish(() =>
        reject(
          new JobFailure(
            'worker',
            `the job's process ended without a result (${sig ? `signal ${sig}` : `exit code ${code}`})`,
          ),
        ),
      ),
    );
    const start: ToChild = { type: 'start', spec };
    child.send(start);
  });
