/**
 * A real Redis for the BullMQ tests: `TEST_REDIS_URL` when set (`.ci/run` starts one on a
 * loopback port), else a private `redis-server` started here on a free loopback port, else none
 * (the tests are skipped with {@link REDIS_SKIP_MESSAGE}).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from '../../fakes/free-port.ts';

export const REDIS_SKIP_MESSAGE =
  'BullMQ suite skipped: no Redis (set TEST_REDIS_URL=redis://127.0.0.1:PORT or install redis-server; .ci/run does)';

const BINARY = '/usr/bin/redis-server';

/** True when a Redis can be had. */
export const REDIS_AVAILABLE = (process.env.TEST_REDIS_URL ?? '') !== '' || existsSync(BINARY);

/** A Redis to use, and how to stop it (a no-op for TEST_REDIS_URL's). */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const given = process.env.TEST_REDIS_URL ?? '';
  if (given !== '') return { url: given, stop: () => Promise.resolve() };
  const port = await freePort();
  const child: ChildProcess = spawn(
    BINARY,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (/Ready to accept connections/i.test(d.toString())) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
