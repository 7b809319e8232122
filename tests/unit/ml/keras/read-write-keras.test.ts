import * as tf from '@tensorflow/tfjs';
import { unzipSync, zipSync, strToU8 } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../../src/errors.ts';
import { initBackend } from '../../../../src/ml/backend.ts';
import { loadModel } from '../../../../src/ml/model-io.ts';
import { SUPPORTED_LAYERS } from '../../../../src/ml/keras/keras-graph.ts';
import {
  readKerasGraph,
  readKerasModel,
  toSnakeCase,
} from '../../../../src/ml/keras/read-keras.ts';
import { writeKerasModel } from '../../../../src/ml/keras/write-keras.ts';
import { withH5Bytes, stringAttribute, groupAt } from '../../../../src/ml/keras/h5-file.ts';
import {
  buildEveryLayerModel,
  buildFunctionalLeNet,
  buildSequentialLeNet,
  keras3File,
  keras3Layer,
  sequentialFile,
  weightsOnlyKeras2,
  weightsOnlyKeras3,
} from '../../../fixtures/keras-models.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

async function maxDifference(
  a: tf.LayersModel,
  b: tf.LayersModel,
  shape: number[],
): Promise<number> {
  const diff = tf.tidy(() => {
    const x = tf.randomUniform([3, ...shape], 0, 255, 'float32', 7);
    return tf.max(tf.abs(tf.sub(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor)));
  });
  const d = (await diff.data())[0]!;
  diff.dispose();
  return d;
}

async function refusal(p: Promise<unknown>): Promise<UserError> {
  const e: unknown = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

describe('Keras files round trip', () => {
  for (const format of ['keras', 'h5'] as const) {
    it(`reads back a ${format} file of every supported layer with the same predictions`, async () => {
      const model = buildEveryLayerModel();
      const classes = new Set(model.layers.map((l) => l.getClassName()));
      expect([...SUPPORTED_LAYERS].filter((c) => !classes.has(c))).toEqual([]);
      const bytes = await writeKerasModel(model, format);
      tf.tidy(() => model.predict(tf.zeros([1, 12, 12, 3]))); // first call's constants
      const before = tf.memory().numTensors;
      const back = await readKerasModel(bytes);
      expect(back.format).toBe(format);
      expect(back.graph.style).toBe('functional');
      expect(back.kerasVersion).toBe(format === 'keras' ? '3.6.0' : '2.15.0');
      expect(await maxDifference(model, back.model, [12, 12, 3])).toBeLessThan(1e-5);
      back.model.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it(`reads a Sequential model saved as ${format} and knows it is Sequential`, async () => {
      const model = buildSequentialLeNet();
      const back = await readKerasModel(await sequentialFile(model, format));
      expect(back.graph.style).toBe('sequential');
      expect(back.graph.layers[0]?.className).toBe('InputLayer');
      expect(await maxDifference(model, back.model, [28, 28, 1])).toBeLessThan(1e-5);
      back.model.dispose();
      model.dispose();
    });
  }

  for (const id of ['lenet-mnist', 'mobilenet-fashion', 'plaincnn-fashion']) {
    it(`exports the course's ${id} in both layouts and reads it back with the same predictions`, async () => {
      const model = await loadModel(`models/${id}`);
      const shape = model.inputs[0]!.shape.slice(1) as number[];
      for (const format of ['keras', 'h5'] as const) {
        const back = await readKerasModel(await writeKerasModel(model, format));
        expect(await maxDifference(model, back.model, shape)).toBeLessThan(1e-5);
        back.model.dispose();
      }
      model.dispose();
    });
  }

  it('writes the Keras 3 layout: config.json, metadata.json, layers/<class>_k/vars/i', async () => {
    const model = buildFunctionalLeNet();
    const files = unzipSync(await writeKerasModel(model, 'keras'));
    expect(Object.keys(files).sort()).toEqual(['config.json', 'metadata.json', 'model.weights.h5']);
    const config = JSON.parse(new TextDecoder().decode(files['config.json'])) as {
      class_name: string;
      config: { layers: { class_name: string; inbound_nodes: { args: unknown[] }[] }[] };
    };
    expect(config.class_name).toBe('Functional');
    const conv = config.config.layers.find((l) => l.class_name === 'Conv2D')!;
    expect(JSON.stringify(conv.inbound_nodes[0]!.args)).toContain('keras_history');
    const shapes = await withH5Bytes(files['model.weights.h5']!, (root) => ({
      conv: (root.get('layers/conv2d/vars/0') as { shape: number[] }).shape,
      conv1: (root.get('layers/conv2d_1/vars/0') as { shape: number[] }).shape,
      dense2: (root.get('layers/dense_2/vars/1') as { shape: number[] }).shape,
    }));
    expect(shapes).toEqual({ conv: [5, 5, 1, 6], conv1: [5, 5, 6, 16], dense2: [10] });
    model.dispose();
  });

  it('writes the Keras 2 layout: model_config and model_weights/<layer>/<layer>/kernel:0', async () => {
    const model = buildFunctionalLeNet();
    const found = await withH5Bytes(await writeKerasModel(model, 'h5'), (root) => ({
      config: JSON.parse(stringAttribute(root, 'model_config') ?? '{}') as { class_name: string },
      kernel: (root.get('model_weights/c1/c1/kernel:0') as { shape: number[] }).shape,
      weights: groupAt(root, 'model_weights') !== undefined,
    }));
    expect(found).toEqual({
      config: expect.objectContaining({ class_name: 'Functional' }) as unknown,
      kernel: [5, 5, 1, 6],
      weights: true,
    });
    model.dispose();
  });

  it('names Keras 3 weight groups the way saving_lib does', () => {
    expect(toSnakeCase('Conv2D')).toBe('conv2d');
    expect(toSnakeCase('BatchNormalization')).toBe('batch_normalization');
    expect(toSnakeCase('DepthwiseConv2D')).toBe('depthwise_conv2d');
    expect(toSnakeCase('GlobalAveragePooling2D')).toBe('global_average_pooling2d');
  });
});

describe('Keras 3 configurations as Keras writes them', () => {
  const input = keras3Layer(
    'InputLayer',
    'input_layer',
    { batch_shape: [null, 8, 8, 1], sparse: false },
    [],
  );

  it('reads a functional config with keras_history inbound nodes and a merge of two tensors', async () => {
    const bytes = await keras3File(
      [
        input,
        keras3Layer('Flatten', 'flatten', { data_format: 'channels_last' }, ['input_layer']),
        keras3Layer('Flatten', 'flatten_1', { data_format: 'channels_last' }, ['input_layer']),
        keras3Layer('Add', 'add', {}, ['flatten', 'flatten_1']),
      ],
      'add',
    );
    const { graph, kerasVersion } = await readKerasGraph(bytes);
    expect(kerasVersion).toBe('3.4.1');
    expect(graph.layers.find((l) => l.name === 'add')?.inbound.map((r) => r.layer)).toEqual([
      'flatten',
      'flatten_1',
    ]);
    const { model } = await readKerasModel(bytes);
    const y = model.predict(tf.ones([1, 8, 8, 1])) as tf.Tensor;
    expect(y.shape).toEqual([1, 64]);
    expect(Array.from(await y.data()).every((v) => v === 2)).toBe(true);
    tf.dispose(y);
    model.dispose();
  });

  it('refuses a Lambda layer by name without running it', async () => {
    const bytes = await keras3File(
      [
        input,
        keras3Layer(
          'Lambda',
          'scale_it',
          { function: { class_name: '__lambda__', config: { code: 'ZXZpbA==' } } },
          ['input_layer'],
        ),
      ],
      'scale_it',
    );
    const e = await refusal(readKerasModel(bytes));
    expect(e.id).toBe('keras.unsupported_layer');
    expect(e.params).toMatchObject({ layer: 'scale_it', className: 'Lambda' });
    expect(String(e.params.supported)).toContain('DepthwiseConv2D');
  });

  it('refuses a custom layer class', async () => {
    const bytes = await keras3File(
      [
        input,
        keras3Layer('MyBlock', 'block', {}, ['input_layer'], {
          module: null,
          registered_name: 'Custom>MyBlock',
        }),
      ],
      'block',
    );
    const e = await refusal(readKerasModel(bytes));
    expect(e.id).toBe('keras.unsupported_layer');
    expect(e.params.layer).toBe('block');
  });

  it('refuses channels_first data', async () => {
    const bytes = await keras3File(
      [
        input,
        keras3Layer(
          'Conv2D',
          'conv',
          { filters: 2, kernel_size: [3, 3], data_format: 'channels_first' },
          ['input_layer'],
        ),
      ],
      'conv',
    );
    const e = await refusal(readKerasModel(bytes));
    expect(e.id).toBe('keras.channels_first');
    expect(e.params.layer).toBe('conv');
  });

  it('reports a weight of the wrong shape with the layer', async () => {
    const model = buildFunctionalLeNet();
    const files = unzipSync(await writeKerasModel(model, 'keras'));
    const config = JSON.parse(new TextDecoder().decode(files['config.json'])) as {
      config: { layers: { name: string; config: { units?: number } }[] };
    };
    config.config.layers.find((l) => l.name === 'd2')!.config.units = 80;
    const broken = zipSync({ ...files, 'config.json': strToU8(JSON.stringify(config)) });
    const e = await refusal(readKerasModel(broken));
    expect(e.id).toBe('keras.weights_mismatch');
    expect(e.params.layer).toBe('d2');
    model.dispose();
  });
});

describe('files that are not whole Keras models', () => {
  it('tells a Keras 3 weights-only file to save the whole model', async () => {
    const e = await refusal(readKerasModel(await weightsOnlyKeras3()));
    expect(e.id).toBe('keras.weights_only');
    expect(e.message).toContain("model.save('name.keras')");
  });

  it('tells a Keras 2 save_weights file the same', async () => {
    expect((await refusal(readKerasModel(await weightsOnlyKeras2()))).id).toBe(
      'keras.weights_only',
    );
  });

  it('refuses a file that is neither a zip nor HDF5', async () => {
    expect((await refusal(readKerasModel(strToU8('print("hello")')))).id).toBe(
      'keras.unsupported_format',
    );
  });

  it('refuses a file over the size limit before reading it', async () => {
    const e = await refusal(
      readKerasModel(new Uint8Array(2048), {
        maxFileBytes: 1024,
        maxUnzippedBytes: 1,
        maxConfigBytes: 1,
        maxEntries: 1,
      }),
    );
    expect(e.id).toBe('keras.too_large');
  });

  it('refuses a zip bomb by its declared unzipped size', async () => {
    const bomb = zipSync(
      { 'config.json': new Uint8Array(4 * 2 ** 20), 'model.weights.h5': new Uint8Array(10) },
      { level: 9 },
    );
    expect(bomb.byteLength).toBeLessThan(20_000);
    const e = await refusal(
      readKerasModel(bomb, {
        maxFileBytes: 2 ** 20,
        maxUnzippedBytes: 2 ** 20,
        maxConfigBytes: 2 ** 20,
        maxEntries: 8,
      }),
    );
    expect(e.id).toBe('keras.too_large');
  });

  it('refuses a damaged zip', async () => {
    const bytes = await writeKerasModel(buildFunctionalLeNet(), 'keras');
    expect((await refusal(readKerasModel(bytes.slice(0, 4000)))).id).toBe('keras.corrupt');
  });
});
