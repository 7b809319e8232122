/**
 * `retrain --wait` follows the job: found trying it, the line printed when the job was queued
 * ("Job 2: ... Place in the queue: 1.") came twice, and a job waiting behind another was then
 * said to be at place 1.
 */
import { describe, expect, it } from 'vitest';
import { follow } from '../../../src/cli/commands/retrain.ts';
import type { JobView } from '../../../src/core/index.ts';
import { queuedJob } from '../../fixtures/job-view.ts';

const base: JobView = queuedJob({ id: 7 });
const progress = { epoch: 1, epochs: 1, batch: 3, batches: 10, loss: 0.5, acc: 0.8, etaSeconds: 9 };

describe('retrain --wait', () => {
  it('prints each progress line once and no queued line (the queued one was printed already)', async () => {
    const states: JobView[] = [
      base,
      base,
      { ...base, state: 'running', attempts: 1 },
      { ...base, state: 'running', attempts: 1, progress },
      { ...base, state: 'running', attempts: 1, progress },
      { ...base, state: 'succeeded', attempts: 1 },
    ];
    let i = 0;
    const lines: string[] = [];
    const job = await follow(
      7,
      () => Promise.resolve(states[i++]),
      false,
      (l) => lines.push(l),
      0,
    );
    expect(job.state).toBe('succeeded');
    expect(i).toBe(states.length);
    expect(lines).toEqual([
      'Job 7 (lenet-mnist): starting (loading the data set)…',
      'Job 7 (lenet-mnist): epoch 1/1, batch 3/10, loss 0.5000, accuracy 80.0%, about 0:09 left.',
    ]);
  });
});
