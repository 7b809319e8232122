import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildAlexNet } from '../../../../src/ml/architectures/alexnet.ts';
import { GraphBuilder, ShapeError } from '../../../../src/ml/architectures/graph-builder.ts';
import { buildMobileNetLike } from '../../../../src/ml/architectures/mobilenet-fashion.ts';
import { buildResNet18 } from '../../../../src/ml/architectures/resnet18.ts';
import { initBackend } from '../../../../src/ml/backend.ts';

beforeAll(async () => {
  await initBackend();
});

const shapeOf = (m: tf.LayersModel, name: string) => m.getLayer(name).outputShape;

describe('buildAlexNet', () => {
  it('keeps the lab sequence and strides and shrinks 32 > 8 > 4 > 2 > 1 with same padding', () => {
    const m = buildAlexNet();
    expect(shapeOf(m, 'conv1')).toEqual([null, 8, 8, 96]);
    expect(shapeOf(m, 'pool1')).toEqual([null, 4, 4, 96]);
    expect(shapeOf(m, 'conv2')).toEqual([null, 4, 4, 256]);
    expect(shapeOf(m, 'pool2')).toEqual([null, 2, 2, 256]);
    expect(shapeOf(m, 'conv5')).toEqual([null, 2, 2, 256]);
    expect(shapeOf(m, 'pool5')).toEqual([null, 1, 1, 256]);
    expect(shapeOf(m, 'fc6')).toEqual([null, 4096]);
    expect(m.outputs[0]!.shape).toEqual([null, 10]);
    // Convs without bias (batch norm follows), 4 figures per BN channel, dense layers with bias.
    const convKernels = 96 * 363 + 256 * 2400 + 384 * 2304 + 384 * 3456 + 256 * 3456;
    const bn = 4 * (96 + 256 + 384 + 384 + 256);
    const dense = 257 * 4096 + 4097 * 4096 + 4097 * 10;
    expect(m.countParams()).toBe(convKernels + bn + dense);
    expect(m.countParams()).toBe(21_626_282);
    expect(m.getLayer('conv1_bn').getClassName()).toBe('BatchNormalization');
    expect(m.getLayer('conv1_relu').outputShape).toEqual([null, 8, 8, 96]);
    const drops = m.layers.filter((l) => l.getClassName() === 'Dropout');
    expect(drops.map((l) => (l.getConfig() as { rate: number }).rate)).toEqual([0.5, 0.5]);
    m.dispose();
  });

  it('without normalization has exactly the lab layers, biases included', () => {
    const m = buildAlexNet({ normalization: 'none' });
    const conv = 96 * 364 + 256 * 2401 + 384 * 2305 + 384 * 3457 + 256 * 3457;
    const dense = 257 * 4096 + 4097 * 4096 + 4097 * 10;
    expect(m.countParams()).toBe(conv + dense);
    expect(m.countParams()).toBe(21_622_154);
    expect(m.layers.map((l) => l.getClassName())).not.toContain('BatchNormalization');
    m.dispose();
  });

  it('the literal variant fails at the second pooling with every layer shape listed', () => {
    let error: unknown;
    try {
      buildAlexNet({ variant: 'literal' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ShapeError);
    const e = error as ShapeError;
    expect(e.layers.map((l) => [l.name, l.outputShape])).toEqual([
      ['alexnet_literal_input', [null, 32, 32, 3]],
      ['conv1', [null, 6, 6, 96]],
      ['pool1', [null, 2, 2, 96]],
      ['conv2', [null, 2, 2, 256]],
      ['pool2', [null, 0, 0, 256]],
    ]);
    expect(e.message).toMatch(/layer "pool2" \(MaxPooling2D\) would output \[batch, 0, 0, 256\]/);
    expect(e.message).toContain(
      'conv1                    Conv2D                 [batch, 6, 6, 96]',
    );
  });

  it('predicts a probability distribution for a batch', () => {
    const m = buildAlexNet({ seed: 3 });
    const before = tf.memory().numTensors;
    const sums = tf.tidy(() =>
      (m.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor).sum(1).arraySync(),
    );
    expect(tf.memory().numTensors).toBe(before);
    expect((sums as number[]).map((s) => Number(s.toFixed(5)))).toEqual([1, 1]);
    m.dispose();
  });
});

describe('GraphBuilder', () => {
  it('reports a layer that rejects its input, with the shapes so far', () => {
    const g = new GraphBuilder('bad', [4, 4, 2]);
    const x = g.apply(tf.layers.conv2d({ name: 'c', filters: 3, kernelSize: 3 }), g.input);
    expect(() =>
      g.apply(tf.layers.dense({ name: 'd', units: 2, inputShape: [7] }), [x, x]),
    ).toThrow(
      /bad: layer "d" \(Dense\) cannot take its input[\s\S]*c\s+Conv2D\s+\[batch, 2, 2, 3\]/,
    );
  });
});

describe('buildResNet18', () => {
  it('has the stem, four stages of two bottleneck blocks and projection shortcuts where the shape changes', () => {
    const m = buildResNet18();
    expect(shapeOf(m, 'stem_conv')).toEqual([null, 16, 16, 64]);
    expect(shapeOf(m, 'stem_pool')).toEqual([null, 8, 8, 64]);
    expect(shapeOf(m, 'stage1_block2_out')).toEqual([null, 8, 8, 64]);
    expect(shapeOf(m, 'stage2_block1_out')).toEqual([null, 4, 4, 128]);
    expect(shapeOf(m, 'stage3_block1_out')).toEqual([null, 2, 2, 256]);
    expect(shapeOf(m, 'stage4_block2_out')).toEqual([null, 1, 1, 512]);
    const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
    // 1 stem + 8 blocks x 3 + projections: stages 2-4 change size (3); stage 1's input already has 64 channels.
    expect(convs).toHaveLength(1 + 24 + 3);
    expect(convs.filter((n) => n.endsWith('_proj'))).toEqual([
      'stage2_block1_proj',
      'stage3_block1_proj',
      'stage4_block1_proj',
    ]);
    expect(m.layers.filter((l) => l.getClassName() === 'Add')).toHaveLength(8);
    expect(m.countParams()).toBe(898_762);
    m.dispose();
  });

  it('its plain twin has the same convs in order and no shortcut', () => {
    const res = buildResNet18();
    const plain = buildResNet18({ shortcuts: false });
    const convs = (m: tf.LayersModel) =>
      m.layers
        .filter((l) => l.getClassName() === 'Conv2D' && !l.name.endsWith('_proj'))
        .map((l) => [l.name, l.outputShape]);
    expect(convs(plain)).toEqual(convs(res));
    expect(plain.layers.filter((l) => l.getClassName() === 'Add')).toHaveLength(0);
    expect(plain.countParams()).toBe(723_146);
    res.dispose();
    plain.dispose();
  });
});

describe('buildMobileNetLike', () => {
  it('uses depthwise separable blocks with batch norm and ReLU6', () => {
    const m = buildMobileNetLike();
    const types = m.layers.map((l) => l.getClassName());
    expect(types.filter((t) => t === 'DepthwiseConv2D')).toHaveLength(5);
    expect(types.filter((t) => t === 'Conv2D')).toHaveLength(1 + 5);
    const relu = m.getLayer('block1_dw_relu6').getConfig() as { maxValue: number };
    expect(relu.maxValue).toBe(6);
    expect(shapeOf(m, 'block5_pw_relu6')).toEqual([null, 7, 7, 128]);
    expect(m.countParams()).toBe(38_346);
    m.dispose();
  });

  it('the plain CNN has the same depth and widths, with full 3x3 convs and 7x the parameters', () => {
    const sep = buildMobileNetLike();
    const plain = buildMobileNetLike({ separable: false });
    const outs = (m: tf.LayersModel, suffix: string) =>
      m.layers.filter((l) => l.name.endsWith(suffix)).map((l) => l.outputShape);
    expect(outs(plain, '_relu6').slice(1)).toEqual(outs(sep, '_pw_relu6'));
    expect(plain.layers.filter((l) => l.getClassName() === 'DepthwiseConv2D')).toHaveLength(0);
    expect(plain.countParams()).toBe(284_250);
    sep.dispose();
    plain.dispose();
  });
});
