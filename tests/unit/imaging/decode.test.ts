import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import { decodeImage, inspectImage, sniffFormat } from '../../../src/imaging/decode.ts';
import { pngChunk } from '../../fixtures/hostile-files.ts';

const limits = { maxBytes: 20 * 1024 * 1024, maxPixels: 40_000_000 };

async function errorId(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UserError) return e.id;
    throw e;
  }
  return 'no error';
}

const scene = () =>
  sharp({ create: { width: 160, height: 120, channels: 3, background: '#d0d0d0' } }).composite([
    {
      input: Buffer.from(
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120"><circle cx="80" cy="60" r="40" fill="#204080"/></svg>',
      ),
    },
  ]);

/** A valid-looking 40,000 x 40,000 PNG of a few hundred bytes: the header claims, the data lies. */
function pngBomb(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(40_000, 0);
  ihdr.writeUInt32BE(40_000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const idat = deflateSync(Buffer.alloc(4 * (1 + 40_000 * 3)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('inspectImage', () => {
  it('rejects an empty file', async () => {
    expect(await errorId(inspectImage(new Uint8Array(0), limits))).toBe('image.empty');
  });

  it('rejects a file over the byte limit before looking inside', async () => {
    const png = await scene().png().toBuffer();
    expect(await errorId(inspectImage(png, { ...limits, maxBytes: 100 }))).toBe(
      'image.too_large_bytes',
    );
  });

  it('recognises a PDF by its header, whatever the name', async () => {
    const pdf = Buffer.from(
      '%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n',
      'latin1',
    );
    expect(await errorId(inspectImage(pdf, limits))).toBe('image.pdf');
  });

  it('rejects plain text, HTML and SVG as text', async () => {
    for (const text of [
      'hello, this is a note\n',
      '<!doctype html><p>hi</p>',
      '<svg xmlns="http://www.w3.org/2000/svg"/>',
      'Привет 7',
    ]) {
      expect(await errorId(inspectImage(Buffer.from(text), limits))).toBe('image.text');
    }
  });

  it('rejects unknown binary data and BMP as unsupported', async () => {
    const random = Uint8Array.from({ length: 2000 }, (_, i) => (i * 7919 + 13) % 251);
    expect(await errorId(inspectImage(random, limits))).toBe('image.unsupported_format');
    const bmp = Buffer.alloc(64);
    bmp.write('BM', 0, 'ascii');
    expect(await errorId(inspectImage(bmp, limits))).toBe('image.unsupported_format');
  });

  it('refuses a 40,000 x 40,000 PNG from its header alone, in well under a second', async () => {
    const bomb = pngBomb();
    expect(bomb.length).toBeLessThan(500_000);
    const t = performance.now();
    expect(await errorId(inspectImage(bomb, limits))).toBe('image.too_many_pixels');
    expect(await errorId(decodeImage(bomb, limits))).toBe('image.too_many_pixels');
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('identifies formats by magic numbers', async () => {
    expect(sniffFormat(await scene().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffFormat(await scene().png().toBuffer())).toBe('png');
    expect(sniffFormat(await scene().webp().toBuffer())).toBe('webp');
    expect(sniffFormat(await scene().gif().toBuffer())).toBe('gif');
    expect(sniffFormat(await scene().tiff().toBuffer())).toBe('tiff');
    expect(sniffFormat(await scene().avif({ effort: 0 }).toBuffer())).toBe('avif');
  });
});

describe('decodeImage', () => {
  it('reports a JPEG cut in half as truncated', async () => {
    const jpg = await scene().jpeg().toBuffer();
    expect(await errorId(decodeImage(jpg.subarray(0, jpg.length >> 1), limits))).toBe(
      'image.truncated',
    );
  });

  it('reports a PNG cut in half as truncated', async () => {
    const png = await scene().png({ compressionLevel: 0 }).toBuffer();
    expect(await errorId(decodeImage(png.subarray(0, png.length >> 1), limits))).toBe(
      'image.truncated',
    );
  });

  it('reports a PNG with a broken header as corrupt', async () => {
    const png = Buffer.from(await scene().png().toBuffer());
    png.fill(0x41, 12, 40); // overwrite IHDR
    expect(await errorId(decodeImage(png, limits))).toBe('image.corrupt');
  });

  it('decodes to upright 8-bit RGB of the right size', async () => {
    const img = await decodeImage(await scene().png().toBuffer(), limits);
    expect([img.width, img.height, img.data.length]).toEqual([160, 120, 160 * 120 * 3]);
    expect(img.backdrop).toBe('opaque');
  });

  it('applies the EXIF orientation (width and height swap)', async () => {
    const jpg = await scene().jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const info = await inspectImage(jpg, limits);
    expect([info.width, info.height, info.orientation]).toEqual([160, 120, 6]);
    const img = await decodeImage(jpg, limits);
    expect([img.width, img.height]).toEqual([120, 160]);
  });

  it('shrinks to maxSide keeping the aspect ratio', async () => {
    const img = await decodeImage(await scene().png().toBuffer(), limits, { maxSide: 80 });
    expect([img.width, img.height]).toEqual([80, 60]);
  });

  it('uses the first frame of an animated GIF', async () => {
    const frames = await sharp({
      create: { width: 20, height: 60, channels: 3, background: '#ff0000' },
    })
      .composite([
        {
          input: { create: { width: 20, height: 20, channels: 3, background: '#00ff00' } },
          top: 20,
          left: 0,
        },
        {
          input: { create: { width: 20, height: 20, channels: 3, background: '#0000ff' } },
          top: 40,
          left: 0,
        },
      ])
      .raw()
      .toBuffer();
    const gif = await sharp(frames, { raw: { width: 20, height: 60, channels: 3, pageHeight: 20 } })
      .gif({ loop: 0 })
      .toBuffer();
    const img = await decodeImage(gif, limits);
    expect([img.width, img.height, img.info.pages]).toEqual([20, 20, 3]);
    expect(Array.from(img.data.subarray(0, 3))).toEqual([255, 0, 0]);
  });

  it('converts a 16-bit PNG to 8 bits', async () => {
    const png16 = await scene().toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const img = await decodeImage(png16, limits);
    expect(img.data.length).toBe(160 * 120 * 3);
    expect(img.data[0]).toBeGreaterThan(200); // #d0d0d0 corner
  });

  it('converts a CMYK JPEG to sRGB', async () => {
    const cmyk = await sharp({
      create: { width: 30, height: 20, channels: 3, background: '#3366cc' },
    })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const img = await decodeImage(cmyk, limits);
    const [r = 0, g = 0, b = 0] = img.data;
    expect(b).toBeGreaterThan(r + 60);
    expect(b).toBeGreaterThan(g + 30);
  });

  it('flattens a black drawing on a transparent canvas onto white', async () => {
    const rgba = Buffer.alloc(40 * 40 * 4);
    for (let y = 15; y < 25; y++) for (let x = 0; x < 40; x++) rgba[(y * 40 + x) * 4 + 3] = 255; // black bar
    const png = await sharp(rgba, { raw: { width: 40, height: 40, channels: 4 } })
      .png()
      .toBuffer();
    const img = await decodeImage(png, limits);
    expect(img.backdrop).toBe('white');
    expect(img.data[0]).toBe(255);
    expect(img.data[(20 * 40 + 5) * 3]).toBe(0);
  });

  it('flattens a white drawing on a transparent canvas onto black', async () => {
    const rgba = Buffer.alloc(40 * 40 * 4);
    for (let y = 15; y < 25; y++)
      for (let x = 0; x < 40; x++) rgba.set([255, 255, 255, 255], (y * 40 + x) * 4);
    const img = await decodeImage(
      await sharp(rgba, { raw: { width: 40, height: 40, channels: 4 } })
        .png()
        .toBuffer(),
      limits,
    );
    expect(img.backdrop).toBe('black');
    expect(img.data[0]).toBe(0);
  });

  it('decodes grey + alpha', async () => {
    const ga = await sharp({
      create: { width: 30, height: 20, channels: 4, background: { r: 90, g: 90, b: 90, alpha: 1 } },
    })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const meta = await sharp(ga).metadata();
    expect([meta.channels, meta.hasAlpha]).toEqual([2, true]);
    const img = await decodeImage(ga, limits);
    expect(Array.from(img.data.subarray(0, 3))).toEqual([90, 90, 90]);
  });
});
