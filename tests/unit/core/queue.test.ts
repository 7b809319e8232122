import { describe, expect, it } from 'vitest';
import { createTaskQueue } from '../../../src/core/queue.ts';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('createTaskQueue', () => {
  it('runs at most `concurrency` tasks at once, in arrival order', async () => {
    const q = createTaskQueue(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const results = await Promise.all(
      [...Array(6).keys()].map((i) =>
        q.run(async () => {
          running++;
          peak = Math.max(peak, running);
          order.push(i);
          await tick();
          running--;
          return i * 10;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results).toEqual([0, 10, 20, 30, 40, 50]);
    expect(q.size).toBe(0);
  });

  it('keeps going after a task fails', async () => {
    const q = createTaskQueue(1);
    const failed = q.run(() => Promise.reject(new Error('no')));
    const next = q.run(() => Promise.resolve('yes'));
    await expect(failed).rejects.toThrow('no');
    await expect(next).resolves.toBe('yes');
  });

  it('refuses a concurrency below 1', () => {
    expect(() => createTaskQueue(0)).toThrow(RangeError);
  });
});
