import { describe, expect, it } from 'vitest';
import type { TrainingRunRecord } from '../../../src/db/training-run-repository.ts';
import { jobSpec } from '../../../src/jobs/db-worker.ts';

/** A queued /retrain job whose parameters a chat user filled, paths included. */
function run(params: TrainingRunRecord['params']): TrainingRunRecord {
  return {
    id: 12,
    modelId: 'lenet-mnist',
    status: 'queued',
    requestedBy: 3,
    startedAt: null,
    finishedAt: null,
    params,
    metrics: null,
    error: null,
    createdAt: new Date(0),
    leaseOwner: null,
    leaseExpiresAt: null,
    heartbeatAt: null,
    attempts: 0,
    cancelRequested: false,
    progress: null,
  } as TrainingRunRecord;
}

describe('a /retrain job spec (the chat side of train --init-from)', () => {
  it("takes only epochs, batch and lr from the job's parameters: no initFrom or folder from a chat user", () => {
    const folders = { modelsDir: '/srv/models', dataDir: '/srv/data' };
    const spec = jobSpec(
      run({
        epochs: 2,
        batch: 32,
        lr: 0.001,
        initFrom: '/etc',
        outputDir: '/tmp/x',
        checkpointDir: '/tmp/y',
        dataDir: '/tmp/z',
      }),
      { folders },
    );
    expect(spec).not.toHaveProperty('initFrom');
    expect(spec).toMatchObject({
      model: 'lenet-mnist',
      dataDir: '/srv/data',
      epochs: 2,
      batchSize: 32,
      learningRate: 0.001,
      resume: true,
      force: true,
    });
    expect(spec.outputDir.startsWith('/srv/data/')).toBe(true);
    expect(spec.checkpointDir?.startsWith('/srv/data/')).toBe(true);
  });
});
