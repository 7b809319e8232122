import { describe, expect, it } from 'vitest';
import { translator } from '../../../src/core/i18n.ts';
import {
  jobStatusText,
  parseRetrainArgs,
  type JobView,
  type TrainingLimits,
} from '../../../src/core/training.ts';

const limits: TrainingLimits = { maxEpochs: 30, maxBatch: 512, jobsPerInstructor: 2 };
const models = ['lenet-mnist', 'resnet18-cifar10'];

describe('parseRetrainArgs', () => {
  it.each([
    ['lenet-mnist', { model: 'lenet-mnist' }],
    [
      'LeNet-MNIST epochs=3 lr=0.001 batch=64',
      { model: 'lenet-mnist', epochs: 3, lr: 0.001, batch: 64 },
    ],
    ['lenet-mnist force epochs=1', { model: 'lenet-mnist', epochs: 1, force: true }],
  ])('reads %j', (raw, value) => {
    expect(parseRetrainArgs(raw, models, limits)).toEqual({ ok: true, value });
  });

  it.each([
    [
      'lenet-mnist epochs=31',
      'job.limit',
      { what: 'epochs', value: 31, limit: 30, setting: 'TRAIN_MAX_EPOCHS' },
    ],
    [
      'lenet-mnist batch=4096',
      'job.limit',
      { what: 'batch', value: 4096, limit: 512, setting: 'TRAIN_MAX_BATCH' },
    ],
    ['lenet-mnist epochs=0', 'argument.invalid', { value: 'epochs=0' }],
    ['lenet-mnist lr=-1', 'argument.invalid', { value: 'lr=-1' }],
    ['lenet-mnist turbo', 'argument.invalid', { value: 'turbo' }],
    ['alexnet-imagenet', 'model.unknown', { model: 'alexnet-imagenet' }],
    ['', 'argument.invalid', {}],
  ])('refuses %j with %s', (raw, id, params) => {
    const r = parseRetrainArgs(raw, models, limits);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.id).toBe(id);
      expect(r.error.params).toMatchObject(params);
    }
  });
});

const base: JobView = {
  id: 7,
  modelId: 'lenet-mnist',
  state: 'failed',
  params: { epochs: 2 },
  requester: 'telegram:1',
  progress: null,
  createdAt: new Date(0),
  startedAt: new Date(0),
  finishedAt: new Date(60_000),
  attempts: 3,
  version: null,
  result: null,
  failure: null,
  backend: null,
  device: null,
};

describe('jobStatusText', () => {
  it.each([
    [
      'nan',
      'en',
      'Job 7 (lenet-mnist) failed: the loss became NaN (try a smaller learning rate, lr=). The served model is unchanged.',
    ],
    [
      'disk',
      'ru',
      'Задача 7 (lenet-mnist) не удалась: на диске сервера нет места. Текущая модель не изменилась.',
    ],
    [
      'dataset',
      'en',
      'Job 7 (lenet-mnist) failed: the data set is not on the server (download it with: bin/cnn-classroom download mnist). The served model is unchanged.',
    ],
    [
      'worker',
      'en',
      'Job 7 (lenet-mnist) failed: its worker stopped 3 times. The served model is unchanged.',
    ],
  ] as const)('explains a %s failure in %s', (reason, lang, text) => {
    const job: JobView = {
      ...base,
      failure: { reason, message: 'x', command: 'bin/cnn-classroom download mnist' },
    };
    expect(jobStatusText(job, translator(lang), lang)).toBe(text);
  });

  it('says a less accurate version is kept, and how to serve it anyway', () => {
    const job: JobView = {
      ...base,
      state: 'succeeded',
      version: '2',
      result: {
        testAccuracy: 0.95,
        servedVersion: '1',
        servedAccuracy: 0.99,
        promoted: false,
        forced: false,
      },
    };
    expect(jobStatusText(job, translator('en'), 'en')).toBe(
      'Job 7 done: lenet-mnist version 2 has test accuracy 95.00%, below 99.00% of the served version 1, so version 1 stays. To serve the new one anyway: /rollback lenet-mnist 2.',
    );
  });

  it('shows running progress with 1-based epochs and an ETA', () => {
    const job: JobView = {
      ...base,
      state: 'running',
      progress: {
        epoch: 1,
        epochs: 2,
        batch: 10,
        batches: 30,
        loss: 0.5,
        acc: 0.875,
        etaSeconds: 65,
      },
    };
    expect(jobStatusText(job, translator('en'), 'en')).toBe(
      'Job 7 (lenet-mnist): epoch 1/2, batch 10/30, loss 0.5000, accuracy 87.5%, about 1:05 left.',
    );
  });

  it('says when the last batch is done that the job tests and saves the new version', () => {
    const job: JobView = {
      ...base,
      state: 'running',
      progress: {
        epoch: 2,
        epochs: 2,
        batch: 30,
        batches: 30,
        loss: 0.25,
        acc: 0.9375,
        etaSeconds: 0,
      },
    };
    expect(jobStatusText(job, translator('en'), 'en')).toBe(
      'Job 7 (lenet-mnist): epoch 2/2 trained, loss 0.2500, accuracy 93.8%; now testing on the full test set and saving the new version…',
    );
    expect(jobStatusText(job, translator('ru'), 'ru')).toMatch(
      /^Задача 7 \(lenet-mnist\): эпоха 2\/2 обучена, loss 0\.2500, точность 93[,.]8\s?%; теперь проверяю/,
    );
  });
});
