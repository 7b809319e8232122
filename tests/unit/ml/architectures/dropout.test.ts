import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { setDropoutStep, StepSeededDropout } from '../../../../src/ml/architectures/dropout.ts';
import { initBackend } from '../../../../src/ml/backend.ts';

beforeAll(async () => {
  await initBackend();
});

/** A model whose output is its dropout layer's output on a ones input: the mask, scaled. */
function dropoutModel(seed = 7): tf.LayersModel {
  const input = tf.input({ shape: [64] });
  const out = new StepSeededDropout({ name: 'drop', rate: 0.5, seed }).apply(
    input,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** Runs the layer in training mode once and returns the mask (values 0 or 2). */
function trainingMask(model: tf.LayersModel): number[] {
  const layer = model.getLayer('drop');
  return tf.tidy(() => {
    const y = layer.apply(tf.ones([1, 64]), { training: true }) as tf.Tensor;
    return Array.from(y.dataSync());
  });
}

describe('StepSeededDropout', () => {
  it('draws a fresh mask at every training step, the same masks for the same seed and steps', () => {
    const a = dropoutModel();
    const masks = [trainingMask(a), trainingMask(a), trainingMask(a)];
    for (const m of masks) {
      expect(new Set(m)).toEqual(new Set([0, 2]));
      const kept = m.filter((v) => v === 2).length;
      expect(kept).toBeGreaterThan(16);
      expect(kept).toBeLessThan(48);
    }
    expect(masks[1]).not.toEqual(masks[0]);
    expect(masks[2]).not.toEqual(masks[1]);
    // A second model from the same seed, set to step 1, repeats the second and third masks.
    const b = dropoutModel();
    setDropoutStep(b, 1);
    expect(trainingMask(b)).toEqual(masks[1]);
    expect(trainingMask(b)).toEqual(masks[2]);
    // Another seed gives another mask at step 0.
    expect(trainingMask(dropoutModel(8))).not.toEqual(masks[0]);
    a.dispose();
    b.dispose();
  });

  it('is the identity at inference and counts no step there', () => {
    const m = dropoutModel();
    const before = tf.memory().numTensors;
    const x = tf.randomUniform([3, 64]);
    const y = m.predict(x) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
    expect((m.getLayer('drop') as StepSeededDropout).step).toBe(0);
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('changes its mask between trainOnBatch steps (tfjs seeded Dropout repeats one mask)', async () => {
    // One weight per unit behind the dropout: a unit's weight moves only in steps it was kept.
    const input = tf.input({ shape: [32] });
    const dropped = new StepSeededDropout({ name: 'drop', rate: 0.5, seed: 3 }).apply(input);
    const out = tf.layers
      .dense({ units: 1, useBias: false, kernelInitializer: 'zeros' })
      .apply(dropped) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: out });
    m.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    const x = tf.ones([1, 32]);
    const y = tf.ones([1, 1]);
    const moved = new Set<number>();
    const kernel = () => Array.from(m.getWeights()[0]!.dataSync());
    let last = kernel();
    for (let s = 0; s < 4; s++) {
      await m.trainOnBatch(x, y);
      const now = kernel();
      now.forEach((v, i) => {
        if (v !== last[i]) moved.add(i);
      });
      last = now;
    }
    // With one fixed mask about 16 of 32 units would ever move; with fresh masks nearly all do.
    expect(moved.size).toBeGreaterThan(26);
    expect((m.getLayer('drop') as StepSeededDropout).step).toBe(4);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('saves as a plain Keras Dropout that tfjs loads without registration', async () => {
    const m = dropoutModel(11);
    const json = m.toJSON(undefined, false) as unknown as {
      config: { layers: { class_name: string; config: { rate: number; seed: number } }[] };
    };
    const layer = json.config.layers.find((l) => l.class_name === 'Dropout');
    expect(layer?.config).toMatchObject({ rate: 0.5, seed: 11 });
    let saved: tf.io.ModelArtifacts | undefined;
    await m.save(
      tf.io.withSaveHandler((a) => {
        saved = a;
        return Promise.resolve({
          modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' },
        });
      }),
    );
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    expect(loaded.getLayer('drop').getClassName()).toBe('Dropout');
    expect(loaded.getLayer('drop')).not.toBeInstanceOf(StepSeededDropout);
    m.dispose();
    loaded.dispose();
  });

  it('without a seed (a Keras Dropout saved without one) seeds itself from its name', () => {
    const mask = (name: string) => {
      const layer = new StepSeededDropout({ name, rate: 0.5, seed: null });
      const m = tf.tidy(() =>
        Array.from((layer.apply(tf.ones([1, 64]), { training: true }) as tf.Tensor).dataSync()),
      );
      return { m, config: layer.getConfig() };
    };
    const a = mask('drop_a');
    expect(mask('drop_a').m).toEqual(a.m);
    expect(mask('drop_b').m).not.toEqual(a.m);
    expect(a.config).not.toHaveProperty('seed');
  });

  it('broadcasts one mask over the axes noiseShape sets to 1', () => {
    const layer = new StepSeededDropout({ name: 'd', rate: 0.5, seed: 2, noiseShape: [1, 32] });
    const rows = tf.tidy(() =>
      (layer.apply(tf.ones([3, 32]), { training: true }) as tf.Tensor).arraySync(),
    ) as number[][];
    expect(rows[1]).toEqual(rows[0]);
    expect(rows[2]).toEqual(rows[0]);
    expect(new Set(rows[0])).toEqual(new Set([0, 2]));
    expect(layer.getConfig()).toMatchObject({ noiseShape: [1, 32], seed: 2 });
  });

  it('refuses a rate outside [0, 1)', () => {
    expect(() => new StepSeededDropout({ name: 'd', rate: 1, seed: 1 })).toThrow(RangeError);
    expect(() => new StepSeededDropout({ name: 'd', rate: -0.1, seed: 1 })).toThrow(RangeError);
  });
});
