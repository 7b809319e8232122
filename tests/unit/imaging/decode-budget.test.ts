import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import {
  countJpegScans,
  decodeImage,
  DECODE_BUDGET,
  inspectImage,
} from '../../../src/imaging/decode.ts';
import {
  blackPng,
  flatImage,
  manyFrameGif,
  manyScanJpeg,
  tiffBomb,
} from '../../fixtures/hostile-files.ts';

const limits = { maxBytes: 20_000_000, maxPixels: 16_000_000 };

async function refusal(p: Promise<unknown>): Promise<UserError | 'no error'> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  return 'no error';
}

async function errorId(p: Promise<unknown>): Promise<string> {
  const r = await refusal(p);
  return r === 'no error' ? r : r.id;
}

describe('the decode budget (issue 19)', () => {
  it('refuses a multi-band TIFF by its samples per pixel, not its pixel count', async () => {
    const tiff = tiffBomb({ width: 630, height: 630, samples: 1000, bits: 8 });
    expect(tiff.length).toBeLessThan(100_000);
    const e = await refusal(decodeImage(tiff, limits));
    expect(e).toBeInstanceOf(UserError);
    expect(e !== 'no error' && [e.id, e.params.channels]).toEqual([
      'image.too_many_channels',
      1000,
    ]);
    // 50 bands, the 38 kB files that cost 2.7 GB each.
    const fifty = tiffBomb({ width: 2000, height: 2000, samples: 50, bits: 8, rowsPerStrip: 8 });
    expect(await errorId(inspectImage(fifty, limits))).toBe('image.too_many_channels');
  });

  it('refuses float and 32-bit TIFF samples with the format named', async () => {
    const float = tiffBomb({ width: 500, height: 500, samples: 3, bits: 32, sampleFormat: 3 });
    const e = await refusal(inspectImage(float, limits));
    expect(e !== 'no error' && [e.id, e.params.sampleFormat]).toEqual([
      'image.unsupported_sample_format',
      '32-bit float',
    ]);
    const uint32 = tiffBomb({ width: 100, height: 100, samples: 1, bits: 32 });
    expect(await errorId(inspectImage(uint32, limits))).toBe('image.unsupported_sample_format');
  });

  it('decodes an ordinary 16-bit RGB TIFF to 8-bit RGB', async () => {
    const tiff = tiffBomb({ width: 40, height: 30, samples: 3, bits: 16 });
    const info = await inspectImage(tiff, limits);
    expect([info.channels, info.bytesPerSample]).toEqual([3, 2]);
    const img = await decodeImage(tiff, limits);
    expect([img.width, img.height, img.data.length]).toEqual([40, 30, 40 * 30 * 3]);
    expect(Math.max(...img.data)).toBe(0);
  });

  it('counts pixels x channels x bytes per sample against the decode bytes', async () => {
    // 1 MP of 16-bit RGBA is 8 MB of pixel data; the default budget at a 1 MP cap is 6 MB.
    const tiff = tiffBomb({ width: 1000, height: 1000, samples: 4, bits: 16, rowsPerStrip: 50 });
    const small = { maxBytes: 20_000_000, maxPixels: 1_000_000 };
    const e = await refusal(inspectImage(tiff, small));
    expect(e !== 'no error' && [e.id, e.params.megabytes]).toEqual(['image.too_much_data', 8]);
    expect((await inspectImage(tiff, { ...small, maxDecodeBytes: 8_000_000 })).channels).toBe(4);
  });

  it('counts JPEG scans from the markers and refuses thousands of them', async () => {
    const baseline = await sharp({
      create: { width: 64, height: 48, channels: 3, background: '#123' },
    })
      .jpeg()
      .toBuffer();
    expect(countJpegScans(baseline)).toBe(1);
    const progressive = await manyScanJpeg(640, 480, 0);
    const ordinary = countJpegScans(progressive);
    expect(ordinary).toBeGreaterThan(1);
    expect(ordinary).toBeLessThanOrEqual(DECODE_BUDGET.maxJpegScans);
    expect(countJpegScans(await manyScanJpeg(640, 480, 7))).toBe(ordinary + 7);
    // An ordinary progressive photo still decodes.
    expect((await decodeImage(progressive, limits)).width).toBe(640);

    const hostile = await manyScanJpeg(2000, 2000, 3000);
    expect(countJpegScans(hostile, 40)).toBe(41); // stops counting past the limit
    const e = await refusal(decodeImage(hostile, limits));
    expect(e !== 'no error' && [e.id, e.params.maxScans]).toEqual(['image.too_many_scans', 40]);
  });

  it('refuses 1 x N and N x 1 strips by their aspect ratio', async () => {
    for (const [w, h] of [
      [1, 1_000_000],
      [1_000_000, 1],
      [30_000, 1000],
    ] as const) {
      const e = await refusal(decodeImage(blackPng(w, h), limits));
      expect(e !== 'no error' && [e.id, e.params.width, e.params.height]).toEqual([
        'image.extreme_aspect',
        w,
        h,
      ]);
    }
    // A panorama of 20:1 is still a photo.
    expect((await inspectImage(blackPng(2000, 100), limits)).width).toBe(2000);
  });

  it('refuses tiny 40 MP WebP and AVIF files by their decoded pixels', async () => {
    for (const format of ['webp', 'avif'] as const) {
      const file = await flatImage(format, 8000, 5000);
      expect(file.length).toBeLessThan(5000);
      const e = await refusal(decodeImage(file, limits));
      expect(e !== 'no error' && [e.id, e.params.maxPixels]).toEqual([
        'image.too_many_pixels',
        16_000_000,
      ]);
    }
  });

  it('refuses an animation of thousands of frames and decodes a short one', async () => {
    const many = manyFrameGif(5000);
    const e = await refusal(decodeImage(many, limits));
    expect(e !== 'no error' && [e.id, e.params.frames]).toEqual(['image.too_many_frames', 5000]);
    const short = await decodeImage(manyFrameGif(50), limits);
    expect([short.info.pages, short.width, short.height]).toEqual([50, 64, 64]);
  });

  it('decodes a 108 MP JPEG shrunk on load (issue 15 item 7)', async () => {
    const photo = await sharp({
      create: { width: 12_000, height: 9000, channels: 3, background: { r: 200, g: 40, b: 40 } },
    })
      .jpeg({ quality: 80 })
      .toBuffer();
    const info = await inspectImage(photo, limits);
    expect([info.width, info.height, info.shrink]).toEqual([12_000, 9000, 4]);
    const full = await decodeImage(photo, limits);
    expect([full.width, full.height]).toEqual([3000, 2250]);
    const small = await decodeImage(photo, limits, { maxSide: 1024 });
    expect([small.width, small.height]).toEqual([1024, 768]);
    expect(small.data[0]).toBeGreaterThan(150); // red survived
    // Beyond 8x the cap even a JPEG is refused: a progressive one keeps every coefficient.
    expect(await errorId(inspectImage(photo, { ...limits, maxPixels: 10_000_000 }))).toBe(
      'image.too_many_pixels',
    );
  });

  it('keeps refusing PNGs over the cap, which cannot shrink while decoding', async () => {
    const png = await flatImage('png', 5000, 4000);
    expect(await errorId(inspectImage(png, limits))).toBe('image.too_many_pixels');
  });
});
