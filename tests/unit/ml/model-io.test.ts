import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModel, MODEL_JSON, saveModel, WEIGHTS_FILE } from '../../../src/ml/model-io.ts';
import { applyQuantization } from '../../../src/ml/quantize.ts';

let root: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'model-io-'));
});

afterEach(async () => {
  tf.disposeVariables();
  await rm(root, { recursive: true, force: true });
});

/** A tiny conv net: [batch, 8, 8, 1] → 3 class probabilities. */
function buildSmallConvNet(seed: number): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed + s });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 1],
        filters: 4,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(1),
        biasInitializer: tf.initializers.randomNormal({ seed: seed + 2 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
  model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

function predict(model: tf.LayersModel, input: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync() as Float32Array);
}

describe('saveModel / loadModel', () => {
  it('round-trips a conv model with identical predictions', async () => {
    const model = buildSmallConvNet(1);
    const input = tf.randomUniform([5, 8, 8, 1], 0, 1, 'float32', 7);
    const dir = path.join(root, 'lenet');

    await saveModel(model, dir);
    const loaded = await loadModel(dir);

    expect(predict(loaded, input)).toEqual(predict(model, input));
    expect(loaded.layers.map((l) => l.getClassName())).toEqual(
      model.layers.map((l) => l.getClassName()),
    );
    tf.dispose(input);
  });

  it('writes the standard model.json + group1-shard1of1.bin layout, with extra files', async () => {
    const model = buildSmallConvNet(2);
    const dir = path.join(root, 'm');

    await saveModel(model, dir, { 'meta.json': '{"id":"m"}\n' });

    expect((await readdir(dir)).sort()).toEqual([
      'group1-shard1of1.bin',
      'meta.json',
      'model.json',
    ]);
    const json = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
    expect(json.modelTopology).toHaveProperty('class_name', 'Sequential');
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0]?.paths).toEqual([WEIGHTS_FILE]);
    expect(json.weightsManifest[0]?.weights.map((w) => w.name)).toEqual(
      model.weights.map((w) => w.originalName),
    );
    expect((await readFile(path.join(dir, WEIGHTS_FILE))).byteLength).toBe(4 * model.countParams());
    expect(await readFile(path.join(dir, 'meta.json'), 'utf8')).toBe('{"id":"m"}\n');
  });

  it('replaces an existing model folder as a whole, leaving no temporary folders', async () => {
    const dir = path.join(root, 'model');
    const input = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 3);
    await saveModel(buildSmallConvNet(3), dir, { 'meta.json': '{"v":1}' });
    await writeFile(path.join(dir, 'stale.txt'), 'from an older save');
    const newer = buildSmallConvNet(4);

    await saveModel(newer, dir, { 'meta.json': '{"v":2}' });

    expect(await readdir(root)).toEqual(['model']);
    expect((await readdir(dir)).sort()).toEqual([
      'group1-shard1of1.bin',
      'meta.json',
      'model.json',
    ]);
    expect(await readFile(path.join(dir, 'meta.json'), 'utf8')).toBe('{"v":2}');
    expect(predict(await loadModel(dir), input)).toEqual(predict(newer, input));
    tf.dispose(input);
  });

  it('keeps the old model when a save is refused', async () => {
    const dir = path.join(root, 'model');
    const model = buildSmallConvNet(5);
    await saveModel(model, dir);

    await expect(saveModel(buildSmallConvNet(6), dir, { '../escape.json': '{}' })).rejects.toThrow(
      /must be a plain file name/,
    );
    await expect(saveModel(buildSmallConvNet(6), dir, { [MODEL_JSON]: '{}' })).rejects.toThrow(
      /would overwrite the model/,
    );

    expect(await readdir(root)).toEqual(['model']);
    const input = tf.ones([1, 8, 8, 1]);
    expect(predict(await loadModel(dir), input)).toEqual(predict(model, input));
    tf.dispose(input);
  });

  it('names the folder when it does not exist', async () => {
    const dir = path.join(root, 'nowhere');

    await expect(loadModel(dir)).rejects.toThrow(
      `Cannot load model from ${dir}: ${path.join(dir, MODEL_JSON)} does not exist.`,
    );
  });

  it('names the file when model.json is corrupt', async () => {
    const dir = path.join(root, 'broken');
    await mkdir(dir);
    await writeFile(path.join(dir, MODEL_JSON), '{"modelTopology": ');

    await expect(loadModel(dir)).rejects.toThrow(
      `Corrupt model file ${path.join(dir, MODEL_JSON)}`,
    );
  });

  it('names the folder when model.json lacks a topology or manifest', async () => {
    const dir = path.join(root, 'partial');
    await mkdir(dir);
    await writeFile(path.join(dir, MODEL_JSON), '{"modelTopology": {}}');

    await expect(loadModel(dir)).rejects.toThrow(/partial.*no valid weightsManifest/);
  });

  it('names the folder when the weights are missing or truncated', async () => {
    const dir = path.join(root, 'weights');
    await saveModel(buildSmallConvNet(7), dir);
    const shard = path.join(dir, WEIGHTS_FILE);
    const bytes = await readFile(shard);
    await writeFile(shard, bytes.subarray(0, 100));

    await expect(loadModel(dir)).rejects.toThrow(
      /Cannot load model from .*weights: weight files hold 100 bytes/,
    );
    await rm(shard);
    await expect(loadModel(dir)).rejects.toThrow(`${shard} does not exist`);
  });

  it('loads several shards and uint8- and float16-quantized weights', async () => {
    // Dense(2) on 3 inputs: kernel [3, 2] as uint8 (value = q·scale + min) in one shard, bias [2]
    // as float16 in a second group — the layouts tensorflowjs_converter writes.
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 })] });
    const dir = path.join(root, 'quantized');
    await saveModel(model, dir);
    const json = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
    const [kernelSpec, biasSpec] = json.weightsManifest[0]!.weights;
    const scale = 0.5;
    const min = -1;
    const quantizedKernel = Uint8Array.from([0, 1, 2, 3, 4, 255]);
    json.weightsManifest = [
      {
        paths: ['k-shard1of2.bin', 'k-shard2of2.bin'],
        weights: [{ ...kernelSpec!, quantization: { dtype: 'uint8', scale, min } }],
      },
      { paths: ['bias.bin'], weights: [{ ...biasSpec!, quantization: { dtype: 'float16' } }] },
    ];
    await writeFile(path.join(dir, MODEL_JSON), JSON.stringify(json));
    await writeFile(path.join(dir, 'k-shard1of2.bin'), quantizedKernel.subarray(0, 4));
    await writeFile(path.join(dir, 'k-shard2of2.bin'), quantizedKernel.subarray(4));
    // float16 0.5 = 0x3800, -1.25 = 0xbd00 (little-endian)
    await writeFile(path.join(dir, 'bias.bin'), Uint8Array.from([0x00, 0x38, 0x00, 0xbd]));

    const loaded = await loadModel(dir);
    const [kernel, bias] = loaded.getWeights().map((w) => Array.from(w.dataSync()));

    expect(kernel).toEqual(Array.from(quantizedKernel, (q) => q * scale + min));
    expect(bias).toEqual([0.5, -1.25]);
  });

  it.each([
    // dtype, weight file share, largest change of a class probability on random inputs
    ['uint8', 1 / 4, 0.01],
    ['float16', 1 / 2, 1e-3],
  ] as const)(
    'saves %s-quantized weights that load to close predictions at a fraction of the size',
    async (dtype, share, tolerance) => {
      const model = buildSmallConvNet(8);
      const input = tf.randomUniform([16, 8, 8, 1], 0, 1, 'float32', 9);
      const plainDir = path.join(root, 'float32');
      const dir = path.join(root, dtype);
      await saveModel(model, plainDir);

      const result = await saveModel(model, dir, { 'meta.json': '{}' }, { quantize: dtype });
      const before = tf.memory().numTensors;
      const loaded = await loadModel(dir);

      // Same weight tensors as the float32 model, nothing left over from decoding.
      expect(loaded.weights.map((w) => w.shape)).toEqual(model.weights.map((w) => w.shape));
      expect(tf.memory().numTensors - before).toBe(loaded.weights.length);
      const json = JSON.parse(
        await readFile(path.join(dir, MODEL_JSON), 'utf8'),
      ) as tf.io.ModelJSON;
      let expectedBytes = 0;
      for (const spec of json.weightsManifest[0]!.weights) {
        expect(spec.dtype).toBe('float32');
        const n = spec.shape.reduce((a, b) => a * b, 1);
        if (spec.shape.length < 2) {
          // Biases stay float32.
          expect(spec.quantization).toBeUndefined();
          expectedBytes += 4 * n;
          continue;
        }
        expectedBytes += 4 * n * share;
        expect(spec.quantization?.dtype).toBe(dtype);
        if (dtype === 'uint8') {
          expect(spec.quantization).toHaveProperty('scale');
          expect(spec.quantization).toHaveProperty('min');
        }
      }
      const bytes = (await readFile(path.join(dir, WEIGHTS_FILE))).byteLength;
      expect(bytes).toBe(expectedBytes);
      expect(bytes).toBeLessThan(
        (await readFile(path.join(plainDir, WEIGHTS_FILE))).byteLength * (share + 0.05),
      );
      expect(result.modelArtifactsInfo.weightDataBytes).toBe(bytes);
      const expected = predict(model, input);
      const actual = predict(loaded, input);
      const worst = Math.max(...actual.map((p, i) => Math.abs(p - expected[i]!)));
      expect(worst).toBeLessThan(tolerance);
      // What train measures before saving is what loading gives, bit for bit.
      applyQuantization(model, dtype);
      expect(predict(model, input)).toEqual(actual);
      tf.dispose(input);
    },
  );
});
