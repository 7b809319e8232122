import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explanationJson } from '../../../src/cli/commands/gradcam.ts';
import { explanationText } from '../../../src/core/explanation-reply.ts';
import { explainImage, explainInput } from '../../../src/explain/explain-image.ts';
import { initBackend } from '../../../src/ml/backend.ts';
import type { LoadedModel } from '../../../src/ml/registry.ts';
import { asLoaded, buildCornerModel, squareImage } from './tiny-models.ts';

const limits = { maxBytes: 1 << 22, maxPixels: 1 << 22 };
let loaded: LoadedModel;

beforeAll(async () => {
  await initBackend();
  loaded = asLoaded(buildCornerModel({ channels: 3 }), [16, 16, 3]);
});
afterAll(() => loaded.model.dispose());

/** A `width x height` PNG, dark, with a white square over its top-left quarter. */
async function photo(width: number, height: number): Promise<Buffer> {
  const square = await sharp({
    create: { width: width >> 2, height: height >> 2, channels: 3, background: '#ffffff' },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 3, background: '#181818' } })
    .composite([{ input: square, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

describe('explainImage', () => {
  it('gives a portrait photo a map of its own shape, the peak in its pixels', async () => {
    const e = await explainImage(loaded, await photo(334, 500), limits, { method: 'gradcam' });
    expect([e.map.width, e.map.height]).toEqual([334, 500]);
    expect([e.image.width, e.image.height]).toEqual([334, 500]);
    expect(e.original).toEqual({ width: 334, height: 500 });
    expect(e.space).toBe('image');
    expect(e.layer).toBe('features');
    expect(e.label).toBe('corner square');
    expect(e.peak!.x).toBeLessThan(334 / 4);
    expect(e.peak!.y).toBeLessThan(500 / 4);
    expect(e.thirds[0]).toBeGreaterThan(0.9);
    expect(e.blob).toMatchObject({ x: 0, y: 0 });
    expect(e.blob!.width).toBeLessThanOrEqual(Math.ceil(334 / 4) + 21);
  });

  it('reports a photo over 1024 px in its own pixels and the map at the display size', async () => {
    const e = await explainImage(loaded, await photo(2000, 1200), limits, {
      method: 'gradcam',
      faithfulness: false,
    });
    expect(e.original).toEqual({ width: 2000, height: 1200 });
    expect([e.map.width, e.map.height]).toEqual([1024, 614]);
    expect([e.image.width, e.image.height]).toEqual([1024, 614]);
    // The white square covers the photo's top-left 500 x 300: peak and blob in photo pixels.
    expect(e.peak!.x).toBeLessThan(500);
    expect(e.peak!.y).toBeLessThan(300);
    expect(e.blob!.x + e.blob!.width).toBeGreaterThan(400);
    expect(e.blob!.x + e.blob!.width).toBeLessThanOrEqual(500 + 2000 / 16);
    const j = explanationJson('big.png', e);
    expect(j.size).toEqual({ width: 2000, height: 1200 });
    expect(j.mapSize).toEqual({ width: 1024, height: 614 });
    expect(j.peak).toEqual(e.peak);
  });

  it('reports that blurring the hot area lowers the confidence more than a random one', async () => {
    const e = await explainImage(loaded, await photo(200, 120), limits, { method: 'gradcam++' });
    const f = e.faithfulness!;
    expect(f.baseline).toBeCloseTo(e.confidence, 5);
    expect(f.hotDrop).toBeGreaterThan(f.randomDrop);
    expect(f.fraction).toBeCloseTo(0.2, 1);
  });

  it('skips the blur check for an empty map and says why', async () => {
    const input = {
      data: new Float32Array(16 * 16 * 3).fill(0.7),
      width: 16,
      height: 16,
      channels: 3 as const,
    };
    const e = await explainInput(loaded, input, { method: 'gradcam' });
    expect(e.note).toBe('flat');
    expect(e.faithfulness).toBeUndefined();
    expect(e.blob).toBeUndefined();
    expect(e.peak).toBeUndefined();
    expect(explanationJson('flat.png', e)).toMatchObject({ peak: null, note: 'flat' });
    expect(e.map.data.some(Number.isNaN)).toBe(false);
    expect(e.space).toBe('model-input');
  });

  it('leaves the number of tensors unchanged after 100 calls', async () => {
    const input = {
      data: squareImage({ channels: 3 }),
      width: 16,
      height: 16,
      channels: 3 as const,
    };
    await explainInput(loaded, input, { method: 'gradcam' });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      await explainInput(loaded, input, {
        method: (['gradcam', 'gradcam++', 'saliency'] as const)[i % 3]!,
        faithfulness: i % 10 === 0,
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('explainImage for a garment model', () => {
  it('draws over the model input (a crop of the photo) and says so for garments', async () => {
    const fashion = asLoaded(
      buildCornerModel({ size: 28, channels: 1 }),
      [28, 28, 1],
      'fashion-gray',
    );
    try {
      // A dark square on white: trimmed and inverted, it fills the input, the corner included.
      const square = await sharp({
        create: { width: 200, height: 160, channels: 3, background: '#ffffff' },
      })
        .composite([
          {
            input: { create: { width: 80, height: 80, channels: 3, background: '#181818' } },
            left: 60,
            top: 40,
          },
        ])
        .png()
        .toBuffer();
      const e = await explainImage(fashion, square, limits, {
        method: 'saliency',
        faithfulness: false,
      });

      expect(e.space).toBe('model-input');
      expect(e.preprocess).toBe('fashion-gray');
      expect(e.original).toEqual({ width: 28, height: 28 });
      expect([e.image.width, e.image.height]).toEqual([28, 28]);
      const text = explanationText(e, 'saliency', (k) => k, 'en');
      expect(text).toContain('explain.garment_space');
      expect(text).not.toContain('explain.digit_space');
    } finally {
      fashion.model.dispose();
    }
  });
});
