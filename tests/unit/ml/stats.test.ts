import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/config.ts';
import { buildAlexNet } from '../../../src/ml/architectures/alexnet.ts';
import { buildLeNet } from '../../../src/ml/architectures/lenet.ts';
import { buildMobileNetLike } from '../../../src/ml/architectures/mobilenet-fashion.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import {
  architectureStats,
  inferenceBytesPerImage,
  measureLatency,
  weightFileBytes,
  type ArchitectureStats,
  type LayerStats,
} from '../../../src/ml/stats.ts';

beforeAll(async () => {
  await initBackend();
});

function row(stats: ArchitectureStats, name: string): LayerStats {
  const r = stats.layers.find((l) => l.name === name);
  if (!r) throw new Error(`no row ${name} in ${stats.layers.map((l) => l.name).join(', ')}`);
  return r;
}

/** input [8, 8, 3] > one layer. */
function oneLayer(layer: tf.layers.Layer): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  return tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
}

describe('architectureStats', () => {
  it('reports LeNet’s 44,426 parameters, its MACs by layer and its activations', () => {
    const model = buildLeNet();
    const s = architectureStats(model);

    expect(s.params).toEqual({ trainable: 44_426, nonTrainable: 0, total: 44_426 });
    expect(s.inputShape).toEqual([28, 28, 1]);
    expect(s.layers.map((l) => [l.name, l.className, l.outputShape, l.macs])).toEqual([
      ['conv1', 'Conv2D', [24, 24, 6], 24 * 24 * 6 * (5 * 5 * 1)],
      ['pool1', 'MaxPooling2D', [12, 12, 6], 0],
      ['conv2', 'Conv2D', [8, 8, 16], 8 * 8 * 16 * (5 * 5 * 6)],
      ['pool2', 'MaxPooling2D', [4, 4, 16], 0],
      ['flatten', 'Flatten', [256], 0],
      ['fc1', 'Dense', [120], 256 * 120],
      ['fc2', 'Dense', [84], 120 * 84],
      ['probs', 'Dense', [10], 84 * 10],
    ]);
    expect(s.macs).toBe(281_640);
    expect(s.flops).toBe(2 * 281_640);
    expect(row(s, 'conv1').trainableParams).toBe(5 * 5 * 6 + 6);
    expect(s.weightBytes).toBe(44_426 * 4);
    const activations = 3456 + 864 + 1024 + 256 + 256 + 120 + 84 + 10;
    expect(s.activationBytes).toBe(activations * 4);
    expect(s.inputBytes).toBe(28 * 28 * 4);
    expect(s.uncounted).toEqual([]);
    model.dispose();
  });

  it('counts a Conv2D as H_out·W_out·C_out·k_h·k_w·C_in, strides and padding included', () => {
    const valid = oneLayer(tf.layers.conv2d({ filters: 4, kernelSize: 3, name: 'c' }));
    expect(row(architectureStats(valid), 'c').macs).toBe(6 * 6 * 4 * (3 * 3 * 3));
    const strided = oneLayer(
      tf.layers.conv2d({ filters: 4, kernelSize: [3, 1], strides: 2, padding: 'same', name: 'c' }),
    );
    expect(row(architectureStats(strided), 'c').macs).toBe(4 * 4 * 4 * (3 * 1 * 3));
  });

  it('counts a DepthwiseConv2D as H_out·W_out·C_in·multiplier·k_h·k_w', () => {
    const model = oneLayer(
      tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'dw' }),
    );
    const r = row(architectureStats(model), 'dw');
    expect(r.outputShape).toEqual([8, 8, 6]);
    expect(r.macs).toBe(8 * 8 * 3 * 2 * 3 * 3);
    expect(r.trainableParams).toBe(3 * 3 * 3 * 2 + 6);
  });

  it('counts a SeparableConv2D as its depthwise plus its pointwise part', () => {
    const model = oneLayer(
      tf.layers.separableConv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'sep' }),
    );
    expect(row(architectureStats(model), 'sep').macs).toBe(8 * 8 * 3 * 9 + 8 * 8 * 3 * 5);
  });

  it('counts batch normalisation’s moving statistics as non-trainable and its work as 0 MACs', () => {
    const model = oneLayer(tf.layers.batchNormalization({ name: 'bn' }));
    const s = architectureStats(model);
    expect(row(s, 'bn')).toEqual(
      expect.objectContaining({ trainableParams: 6, nonTrainableParams: 6, macs: 0 }),
    );
    expect(s.params).toEqual({ trainable: 6, nonTrainable: 6, total: 12 });
  });

  it('flattens a nested model into its layers, and counts a frozen one as non-trainable', () => {
    const inner = tf.sequential({
      name: 'base',
      layers: [
        tf.layers.conv2d({
          inputShape: [8, 8, 3],
          filters: 4,
          kernelSize: 3,
          padding: 'same',
          name: 'conv',
        }),
      ],
    });
    const input = tf.input({ shape: [8, 8, 3] });
    let x = inner.apply(input) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
    const outputs = tf.layers.dense({ units: 2, name: 'head' }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs });

    const s = architectureStats(model);
    expect(s.layers.map((l) => [l.name, l.depth])).toEqual([
      ['base/conv', 1],
      ['gap', 0],
      ['head', 0],
    ]);
    expect(s.macs).toBe(8 * 8 * 4 * 27 + 4 * 2);
    expect(s.params.total).toBe(model.countParams());
    expect(s.params.total).toBe(112 + 10);

    inner.trainable = false;
    expect(architectureStats(model).params).toEqual({
      trainable: 10,
      nonTrainable: 112,
      total: 122,
    });
  });

  it('counts a shared layer once for its parameters and once per call for its MACs', () => {
    const dense = tf.layers.dense({ units: 4, name: 'shared' });
    const input = tf.input({ shape: [4] });
    const outputs = dense.apply(dense.apply(input)) as tf.SymbolicTensor;
    const s = architectureStats(tf.model({ inputs: input, outputs }));
    expect(row(s, 'shared')).toEqual(
      expect.objectContaining({ calls: 2, macs: 2 * 16, activations: 8, trainableParams: 20 }),
    );
    expect(s.params.total).toBe(20);
  });

  it('agrees with the zoo’s documented figures: AlexNet, MobileNet-like and its plain twin', () => {
    const alex = buildAlexNet();
    const a = architectureStats(alex);
    expect(a.params.total).toBe(21_626_282);
    // Batch norm after each conv: 2 non-trainable moving statistics per channel.
    expect(a.params.nonTrainable).toBe(2 * (96 + 256 + 384 + 384 + 256));
    // conv1 8·8·96·(11·11·3), conv2 4·4·256·(5·5·96), conv3-5 at 2x2, then the dense layers.
    const convs = 2_230_272 + 9_830_400 + 3_538_944 + 5_308_416 + 3_538_944;
    expect(a.macs).toBe(convs + 256 * 4096 + 4096 * 4096 + 4096 * 10); // 42,313,728
    alex.dispose();

    const mobile = buildMobileNetLike();
    const m = architectureStats(mobile);
    expect(m.params.total).toBe(38_346);
    // Batch norm's moving mean and variance: 2 per channel of every BN layer.
    const bnChannels = 16 + (16 + 32 + 64 + 64 + 128) + (32 + 64 + 64 + 128 + 128);
    expect(m.params.nonTrainable).toBe(2 * bnChannels);
    expect(row(m, 'block1_dw').macs).toBe(28 * 28 * 16 * 3 * 3);
    expect(row(m, 'block1_pw').macs).toBe(28 * 28 * 16 * 32);
    expect(m.layers.reduce((n, l) => n + l.trainableParams + l.nonTrainableParams, 0)).toBe(38_346);
    mobile.dispose();

    const plain = buildMobileNetLike({ separable: false });
    const p = architectureStats(plain);
    expect(p.params.total).toBe(284_250);
    expect(row(p, 'block1_conv').macs).toBe(28 * 28 * 32 * (3 * 3 * 16));
    expect(p.macs).toBeGreaterThan(5 * m.macs);
    plain.dispose();
  });

  it('refuses a model built for variable-size inputs, naming the layer', () => {
    const input = tf.input({ shape: [null, null, 3] });
    const outputs = tf.layers
      .conv2d({ filters: 2, kernelSize: 3, name: 'anysize' })
      .apply(input) as tf.SymbolicTensor;
    expect(() => architectureStats(tf.model({ inputs: input, outputs }))).toThrow(
      /anysize.*fixed input size/,
    );
  });
});

describe('weightFileBytes', () => {
  it('sums the shards model.json lists: 4 bytes per parameter for the shipped LeNet', async () => {
    expect(await weightFileBytes(path.join(PROJECT_ROOT, 'models', 'lenet-mnist'))).toBe(
      44_426 * 4,
    );
  });
});

describe('measureLatency', () => {
  it('measures ms/image and images/s on the current backend without leaking tensors', async () => {
    const model = buildLeNet();
    const before = tf.memory().numTensors;
    const l = await measureLatency(model, { batch1Runs: 3, warmupRuns: 1, throughputBatch: 50 });
    expect(tf.memory().numTensors).toBe(before);
    expect(l.backend).toBe(tf.getBackend());
    expect(l.msPerImage).toBeGreaterThan(0);
    expect(l.imagesPerSecond).toBeGreaterThan(0);
    expect(l).toEqual(expect.objectContaining({ batch1Runs: 3, throughputImages: 50, chunk: 50 }));
    model.dispose();
  });

  it('splits a batch over the memory budget into chunks, the remainder included', async () => {
    const model = buildLeNet();
    const perImage = inferenceBytesPerImage(architectureStats(model));
    expect(perImage).toBe(28 * 28 * 4 + 3 * 3456 * 4); // input + 3 x conv1's output
    const before = tf.memory().numTensors;
    const l = await measureLatency(model, {
      batch1Runs: 1,
      warmupRuns: 0,
      throughputBatch: 20,
      maxChunkBytes: 8 * perImage,
    });
    expect(l.chunk).toBe(8);
    expect(l.throughputImages).toBe(20);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
