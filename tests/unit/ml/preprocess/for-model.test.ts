import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { modelMetaSchema } from '../../../../src/ml/model-meta.ts';
import {
  CAFFE_MEAN_BGR,
  inputToDisplayBytes,
  preprocessForModel,
} from '../../../../src/ml/preprocess/for-model.ts';

const limits = { maxBytes: 1 << 20, maxPixels: 1 << 20 };

/** A 2x2 RGB picture, row-major: red-ish, magenta-ish, black, near the ImageNet mean. */
const PIXELS = [10, 20, 30, 255, 0, 128, 0, 0, 0, 123, 117, 104];
const png = (): Promise<Buffer> =>
  sharp(Buffer.from(PIXELS), { raw: { width: 2, height: 2, channels: 3 } })
    .png()
    .toBuffer();

describe('preprocessForModel', () => {
  it("caffe: BGR order minus the ImageNet means, unscaled (Keras preprocess_input 'caffe')", async () => {
    const input = await preprocessForModel(
      { preprocess: 'caffe', inputShape: [2, 2, 3] },
      await png(),
      limits,
    );

    expect(CAFFE_MEAN_BGR).toEqual([103.939, 116.779, 123.68]);
    expect(input).toMatchObject({ width: 2, height: 2, channels: 3, range: 'caffe' });
    // Pixel (r, g, b) becomes (b - 103.939, g - 116.779, r - 123.68), stored as float32.
    const expected = Float32Array.from([
      30 - 103.939,
      20 - 116.779,
      10 - 123.68,
      128 - 103.939,
      0 - 116.779,
      255 - 123.68,
      0 - 103.939,
      0 - 116.779,
      0 - 123.68,
      104 - 103.939,
      117 - 116.779,
      123 - 123.68,
    ]);
    expect(input.data).toEqual(expected);
  });

  it('rgb-unit and rgb-signed scale the same pixels to [0, 1] and [-1, 1]', async () => {
    const shape = [2, 2, 3] as [number, number, number];
    const unit = await preprocessForModel(
      { preprocess: 'rgb-unit', inputShape: shape },
      await png(),
      limits,
    );
    const signed = await preprocessForModel(
      { preprocess: 'rgb-signed', inputShape: shape },
      await png(),
      limits,
    );

    expect(unit.data).toEqual(Float32Array.from(PIXELS, (v) => v / 255));
    expect(unit.range).toBe('unit');
    expect(signed.data).toEqual(Float32Array.from(PIXELS, (v) => v / 127.5 - 1));
    expect(signed.range).toBe('signed');
  });

  it('refuses caffe for a model without 3 input channels', async () => {
    await expect(
      preprocessForModel({ preprocess: 'caffe', inputShape: [2, 2, 1] }, await png(), limits),
    ).rejects.toThrow(/caffe.*3 channels/);
  });

  it('is a preprocess kind meta.json may name', () => {
    const meta = {
      id: 'vgg16-imagenet',
      architecture: 'vgg16',
      dataset: 'imagenet',
      inputShape: [224, 224, 3],
      preprocess: 'caffe',
      classNames: ['a', 'b'],
    };
    expect(modelMetaSchema.parse(meta).preprocess).toBe('caffe');
  });
});

describe('inputToDisplayBytes', () => {
  it('undoes every preprocessing, giving back the picture in RGB order', async () => {
    for (const preprocess of ['caffe', 'rgb-unit', 'rgb-signed'] as const) {
      const input = await preprocessForModel(
        { preprocess, inputShape: [2, 2, 3] },
        await png(),
        limits,
      );
      expect(Array.from(inputToDisplayBytes(input)), preprocess).toEqual(PIXELS);
    }
  });

  it('clamps values outside the picture and keeps grey inputs grey', () => {
    const bytes = inputToDisplayBytes({
      data: Float32Array.from([-0.5, 0.5, 1.5]),
      width: 3,
      height: 1,
      channels: 1,
    });
    expect(Array.from(bytes)).toEqual([0, 128, 255]);
  });
});
