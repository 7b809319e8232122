/** issue 16: `/retrain <model> with=class`: parsing and the texts of its results. */
import { describe, expect, it } from 'vitest';
import { buildSlashCommands } from '../../../src/adapters/discord/slash-commands.ts';
import retrain from '../../../src/core/commands/retrain.ts';
import { translator } from '../../../src/core/i18n.ts';
import {
  jobStatusText,
  paramsText,
  parseRetrainArgs,
  type ClassFinetuneView,
  type JobView,
  type TrainingLimits,
} from '../../../src/core/training.ts';

const limits: TrainingLimits = { maxEpochs: 30, maxBatch: 512, jobsPerInstructor: 2 };
const models = ['digits-photo', 'lenet-mnist'];

describe('parseRetrainArgs with=class', () => {
  it.each([
    ['lenet-mnist with=class', { model: 'lenet-mnist', with: 'class' }],
    [
      'digits-photo WITH=CLASS epochs=2 lr=0.0003 force',
      { model: 'digits-photo', with: 'class', epochs: 2, lr: 0.0003, force: true },
    ],
    // Discord's `with` option sends its bare value
    ['lenet-mnist class epochs=1', { model: 'lenet-mnist', with: 'class', epochs: 1 }],
  ])('reads %j', (raw, value) => {
    expect(parseRetrainArgs(raw, models, limits)).toEqual({ ok: true, value });
  });

  it('refuses another data source', () => {
    const r = parseRetrainArgs('lenet-mnist with=cifar', models, limits);
    expect(r.ok ? undefined : r.error.params).toMatchObject({ value: 'with=cifar' });
  });

  it('shows with=class among the parameters', () => {
    expect(paramsText({ with: 'class', epochs: 1, force: true })).toBe('with=class epochs=1 force');
  });
});

const job: JobView = {
  id: 12,
  modelId: 'lenet-mnist',
  state: 'succeeded',
  params: { with: 'class', epochs: 1 },
  requester: 'telegram:1',
  progress: null,
  createdAt: new Date(0),
  startedAt: new Date(0),
  finishedAt: new Date(60_000),
  attempts: 1,
  version: '4',
  result: null,
  failure: null,
  backend: null,
  device: null,
};

const outcome: ClassFinetuneView = {
  parentVersion: '3',
  heldOutPhotos: 60,
  heldOutStudents: ['import:a', 'import:b', 'import:c'],
  heldOutCorrect: { before: 54, after: 57 },
  before: { classHeldOut: 0.9, mnistTest: 0.991 },
  after: { classHeldOut: 0.95, mnistTest: 0.9885 },
  mnistTestSamples: 10000,
  promote: true,
  reason: 'improved',
  maxMnistDrop: 0.005,
};

const withResult = (c: ClassFinetuneView, promoted: boolean, forced = false): JobView => ({
  ...job,
  result: {
    testAccuracy: c.after.mnistTest,
    servedVersion: '3',
    servedAccuracy: c.before.mnistTest,
    promoted,
    forced,
    classFinetune: c,
  },
});

describe('jobStatusText of a with=class job', () => {
  it('reports held-out and MNIST before → after with counts, and the promotion (en)', () => {
    expect(jobStatusText(withResult(outcome, true), translator('en'), 'en')).toBe(
      [
        "Job 12 done: lenet-mnist version 4, fine-tuned from version 3 on the class's photos.",
        'Held-out real photos (60 from 3 students not trained on): 90.00% → 95.00% (54 → 57 right).',
        'MNIST test (10000 images): 99.10% → 98.85%.',
        'Promoted: the held-out accuracy improved and MNIST dropped by at most 0.5 points. Version 4 answers from now on.',
      ].join('\n'),
    );
  });

  it('says why the served version stays (ru: MNIST dropped; en: held-out not improved)', () => {
    const dropped = { ...outcome, promote: false, reason: 'mnist-dropped' as const };
    expect(
      jobStatusText(withResult(dropped, false), translator('ru'), 'ru').split('\n').at(-1),
    ).toBe(
      'Остаётся версия 3: точность на тесте MNIST упала больше чем на 0,5 п. Чтобы всё же включить новую: /rollback lenet-mnist 4.',
    );
    const flat = {
      ...outcome,
      after: { ...outcome.after, classHeldOut: 0.9 },
      heldOutCorrect: { before: 54, after: 54 },
      promote: false,
      reason: 'class-not-improved' as const,
    };
    expect(jobStatusText(withResult(flat, false), translator('en'), 'en').split('\n').at(-1)).toBe(
      'Version 3 stays: the held-out accuracy did not improve. To serve the new one anyway: /rollback lenet-mnist 4.',
    );
    expect(
      jobStatusText(withResult(flat, true, true), translator('en'), 'en')
        .split('\n')
        .at(-1),
    ).toBe('Promoted because you said force (the class rule would have kept version 3).');
  });

  it('explains a job that found too few usable photos after preprocessing', () => {
    const failed: JobView = {
      ...job,
      state: 'failed',
      version: null,
      failure: {
        reason: 'classdata',
        message: '47 usable labelled photos, 50 needed',
        params: { count: 47, needed: 50, missing: 3 },
      },
    };
    expect(jobStatusText(failed, translator('en'), 'en')).toBe(
      "Job 12 (lenet-mnist) failed: after the bot's preprocessing only 47 of the labelled photos are usable, 50 are needed (3 more). Label more photos (the ✓ and digit buttons, /label), accept corrections in /review, or import a folder with bin/cnn-classroom labels import <dir>. The served model is unchanged.",
    );
  });
});

describe('the Discord slash command /retrain', () => {
  it('has a `with` option whose value the parser reads as with=class', () => {
    const [body] = buildSlashCommands([retrain]);
    const options = (body?.options ?? []) as { name: string; name_localizations?: object }[];
    expect(options.map((o) => o.name)).toEqual(['model', 'with', 'params']);
    expect(options[1]?.name_localizations).toMatchObject({ ru: 'данные' });
    // The interaction's string options, joined in the command's order, as the adapter does.
    const args = ['lenet-mnist', 'class', 'epochs=1'].join(' ');
    expect(parseRetrainArgs(args, models, limits)).toEqual({
      ok: true,
      value: { model: 'lenet-mnist', with: 'class', epochs: 1 },
    });
  });
});
