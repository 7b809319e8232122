import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { literalText } from '../../../src/adapters/discord/message-text.ts';
import { UserError } from '../../../src/errors.ts';
import { translator } from '../../../src/core/i18n.ts';
import {
  labEvaluationsIdle,
  runLabCheck,
  type LabCheckContext,
  type LabCheckServices,
} from '../../../src/core/lab-check.ts';
import { resultLines } from '../../../src/core/lab-report.ts';
import { createMemoryStore } from '../../../src/core/memory-store.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import { writeKerasModel } from '../../../src/ml/keras/write-keras.ts';
import { buildFunctionalLeNet } from '../../fixtures/keras-models.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

function context(file?: {
  bytes: Uint8Array;
  name: string;
}): LabCheckContext & { texts: string[]; images: number } {
  const out = { texts: [] as string[], images: 0 };
  return Object.assign(out, {
    platform: 'web' as const,
    user: { id: 'u1', name: 'Ann' },
    chat: { id: 'c1', type: 'private' as const },
    ...(file
      ? {
          image: {
            fetch: () => Promise.resolve(file.bytes),
            fileName: file.name,
            declaredBytes: file.bytes.length,
          },
        }
      : {}),
    lang: 'en' as const,
    t: translator('en'),
    reply: (text: string) => {
      out.texts.push(text);
      return Promise.resolve();
    },
    replyImage: (_png: Uint8Array, caption: string) => {
      out.images += 1;
      out.texts.push(caption);
      return Promise.resolve();
    },
  });
}

function services(
  testSet?: boolean,
): LabCheckServices & { store: ReturnType<typeof createMemoryStore> } {
  const store = createMemoryStore();
  return {
    store,
    labSubmissions: store.labSubmissions,
    images: store.images,
    models: { get: () => Promise.reject(new Error('no reference models here')) },
    logger: pino({ level: 'silent' }),
    ...(testSet
      ? {
          labTestSets: {
            load: () =>
              Promise.resolve({
                images: new Uint8Array(4 * 32 * 32 * 3),
                labels: new Uint8Array(4),
                count: 4,
                height: 32,
                width: 32,
                channels: 3,
                classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
              }),
          },
        }
      : {}),
  };
}

describe('runLabCheck', () => {
  it('says the data set is missing, with the download command, and still reports and records the checks', async () => {
    const model = buildFunctionalLeNet();
    const bytes = await writeKerasModel(model, 'keras');
    model.dispose();
    const ctx = context({ bytes, name: 'lenet.keras' });
    const s = services(false);
    const before = tf.memory().numTensors;
    await runLabCheck(ctx, s, 'lenet');
    expect(tf.memory().numTensors).toBe(before);
    expect(ctx.texts.some((t) => t.includes('✓ Layer sequence: 7 layers as the lab asks'))).toBe(
      true,
    );
    expect(ctx.texts.at(-1)).toBe(
      'The mnist test set is not on this server, so the model was not tested (the checks above still apply). An instructor can download it: bin/cnn-classroom download mnist',
    );
    expect(s.store.labSubmissions.rows).toHaveLength(1);
    expect(s.store.labSubmissions.rows[0]).toMatchObject({
      task: 'lenet',
      passed: 5,
      total: 5,
      fileName: 'lenet.keras',
      testAccuracy: null,
    });
  });

  it.each([
    [
      'discord',
      (text: string) => literalText(text),
      'my\\_lenet\\_\\*v2\\*\\_\\~\\~x\\~\\~\\|\\|\\`\\`.keras',
    ],
    ['telegram', undefined, 'my_lenet_*v2*_~~x~~||``.keras'],
  ] as const)(
    "shows the file's name literally (%s: Discord escapes its Markdown)",
    async (_platform, literal, shown) => {
      const model = buildFunctionalLeNet();
      const bytes = await writeKerasModel(model, 'keras');
      model.dispose();
      const ctx = context({ bytes, name: 'my_lenet_*v2*_~~x~~||``.keras' });
      await runLabCheck(literal ? { ...ctx, literal } : ctx, services(false), 'lenet');
      expect(ctx.texts.some((t) => t.includes(`\n${shown} — Keras `))).toBe(true);
      expect(ctx.texts.some((t) => t.startsWith(`${shown}: `))).toBe(true);
    },
  );

  it('shows layer and class names from the file literally in the report lines on Discord', () => {
    const r = {
      kind: 'layers' as const,
      ok: false,
      code: 'layer_extra',
      params: { layer: 'my_conv_1' },
      found: { op: 'conv' as const, filters: 6, kernel: 5, layer: 'my_conv_1' },
    };
    const t = translator('en');
    expect(resultLines([r], t, literalText)).toEqual([
      '✗ Layer sequence: an extra layer my\\_conv\\_1: Conv2D 6 filters 5×5',
    ]);
    expect(resultLines([r], t)).toEqual([
      '✗ Layer sequence: an extra layer my_conv_1: Conv2D 6 filters 5×5',
    ]);
  });

  it("tells a model whose input does not fit the task's data set, after the report", async () => {
    const model = buildFunctionalLeNet();
    const bytes = await writeKerasModel(model, 'h5');
    model.dispose();
    const ctx = context({ bytes, name: 'lenet.h5' });
    const before = tf.memory().numTensors;
    await runLabCheck(ctx, services(true), 'alexnet');
    await labEvaluationsIdle();
    expect(tf.memory().numTensors).toBe(before);
    expect(
      ctx.texts.some((t) => t.includes('✗ Input shape: expected 32×32×3, found 28×28×1')),
    ).toBe(true);
    expect(ctx.texts.at(-1)).toBe(
      "Testing the model on cifar-10 failed: its input shape 28×28×1 does not match the data set's 32×32×3",
    );
  });

  it('asks for the file when none is attached, and lists the tasks for an unknown one', async () => {
    await expect(runLabCheck(context(), services(), 'lenet')).rejects.toMatchObject({
      id: 'keras.missing',
    });
    const e = await runLabCheck(context(), services(), 'vgg').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).params.known).toBe(
      'alexnet, lenet, mobilenet, plaincnn, plaincnn18, resnet18',
    );
  });
});
