import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { preprocessFashion } from '../../../../src/ml/preprocess/fashion.ts';
import { inputSpansImage, preprocessForModel } from '../../../../src/ml/preprocess/for-model.ts';

const limits = { maxBytes: 1 << 22, maxPixels: 1 << 22 };

/** A 300x200 photo: a `shape`-coloured 60x120 "garment" (a trouser leg) left of centre. */
function photo(background: string, shape: string, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200">
    <rect width="300" height="200" fill="${background}"/>
    <rect x="100" y="40" width="60" height="120" fill="${shape}"/></svg>`;
  const img = sharp(Buffer.from(svg));
  return (format === 'png' ? img.png() : img.jpeg({ quality: 85 })).toBuffer();
}

const at = (input: Float32Array, x: number, y: number): number => input[y * 28 + x] ?? NaN;

/** Columns whose middle row is garment-bright. */
function brightColumns(input: Float32Array): number[] {
  return [...Array(28).keys()].filter((x) => at(input, x, 14) > 0.5);
}

describe('preprocessFashion', () => {
  it('inverts a dark garment on white into a bright garment on a 0 background', async () => {
    const { input, stats } = await preprocessFashion(await photo('white', '#202020'), limits);

    expect(stats.inverted).toBe(true);
    expect(stats.background).toBeCloseTo(1, 2);
    expect(input).toHaveLength(784);
    expect(at(input, 14, 14)).toBeGreaterThan(0.8);
    for (const [x, y] of [
      [0, 0],
      [27, 0],
      [0, 27],
      [27, 27],
    ] as const)
      expect(at(input, x, y)).toBe(0);
  });

  it('keeps a bright garment on black as it is', async () => {
    const { input, stats } = await preprocessFashion(await photo('black', '#e0e0e0'), limits);

    expect(stats.inverted).toBe(false);
    expect(at(input, 14, 14)).toBeGreaterThan(0.8);
    expect(at(input, 0, 0)).toBe(0);
  });

  it('gives both the same input: trimmed, longer side filling the frame, aspect kept, centred', async () => {
    const dark = (await preprocessFashion(await photo('white', 'black'), limits)).input;
    const bright = (await preprocessFashion(await photo('black', 'white'), limits)).input;

    const worst = Math.max(...dark.map((v, i) => Math.abs(v - (bright[i] ?? 0))));
    expect(worst).toBeLessThan(0.02);
    // 60x120 becomes 14x28: full height, 14 columns in the middle, black padding either side.
    expect(at(dark, 14, 0)).toBeGreaterThan(0.8);
    expect(at(dark, 14, 27)).toBeGreaterThan(0.8);
    expect(brightColumns(dark)).toEqual([...Array(14).keys()].map((i) => i + 7));
  });

  it('takes a grey page as white: its background still becomes 0, a JPEG included', async () => {
    const { input, stats } = await preprocessFashion(
      await photo('#b0b0b0', '#303030', 'jpeg'),
      limits,
    );

    expect(stats.inverted).toBe(true);
    expect(stats.background).toBeCloseTo(0xb0 / 255, 1);
    expect(at(input, 0, 0)).toBeLessThan(0.02);
    expect(at(input, 14, 14)).toBeGreaterThan(0.6);
  });

  it.each([
    ['a dark garment on a mid-dark background', 'rgb(115,115,115)', 'rgb(25,25,25)', true],
    ['a white garment on a mid-grey background', 'rgb(150,150,150)', 'rgb(240,240,240)', false],
  ] as const)(
    'finds %s from the garment’s side of it, not from the background’s lightness',
    async (_, background, garment, inverted) => {
      const { input, stats } = await preprocessFashion(await photo(background, garment), limits);

      expect(stats.inverted).toBe(inverted);
      expect(at(input, 14, 14)).toBeGreaterThan(0.7);
      expect(at(input, 0, 0)).toBe(0);
      // 14 of 28 columns bright: a mean of about a half, far from an all-zero input.
      const mean = input.reduce((a, v) => a + v, 0) / input.length;
      expect(mean).toBeGreaterThan(0.3);
      expect(brightColumns(input)).toEqual([...Array(14).keys()].map((i) => i + 7));
    },
  );

  it.each([
    ['white', 'white'],
    ['rgb(115,115,115)', 'rgb(118,118,118)'],
  ])(
    'refuses a picture where nothing stands out (%s background, %s shape) with image.no_garment',
    async (background, shape) => {
      await expect(preprocessFashion(await photo(background, shape), limits)).rejects.toMatchObject(
        { name: 'UserError', id: 'image.no_garment' },
      );
    },
  );

  it('refuses what is not an image with the decoder ids', async () => {
    await expect(preprocessFashion(new Uint8Array(0), limits)).rejects.toMatchObject({
      id: 'image.empty',
    });
  });
});

describe('preprocessForModel with fashion-gray', () => {
  it('returns a one-channel [0, 1] input of the model size', async () => {
    const input = await preprocessForModel(
      { preprocess: 'fashion-gray', inputShape: [28, 28, 1] },
      await photo('white', 'black'),
      limits,
    );

    expect(input).toMatchObject({ width: 28, height: 28, channels: 1, range: 'unit' });
    expect(input.data).toHaveLength(784);
    expect(Math.min(...input.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...input.data)).toBeLessThanOrEqual(1);
  });

  it('refuses a model with colour input', async () => {
    await expect(
      preprocessForModel(
        { preprocess: 'fashion-gray', inputShape: [28, 28, 3] },
        await photo('white', 'black'),
        limits,
      ),
    ).rejects.toThrow(/fashion-gray.*1 channel/);
  });

  it('is a crop of the photo, unlike the resizing kinds', () => {
    expect(inputSpansImage('fashion-gray')).toBe(false);
    expect(inputSpansImage('mnist-digit')).toBe(false);
    expect(inputSpansImage('rgb-unit')).toBe(true);
  });
});
