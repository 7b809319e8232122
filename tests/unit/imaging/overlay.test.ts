import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyColormap, COLORMAPS, colormapTable } from '../../../src/imaging/colormap.ts';
import { renderMapGrid, renderOverlay } from '../../../src/imaging/overlay.ts';

const image = (w: number, h: number) => ({
  data: new Uint8Array(w * h * 3).fill(128),
  width: w,
  height: h,
});
const ramp = (w: number, h: number) => ({
  data: Float32Array.from({ length: w * h }, (_, i) => (i % w) / (w - 1)),
  width: w,
  height: h,
});

describe('colour maps', () => {
  it.each(COLORMAPS)('%s runs from one colour to a different one', (name) => {
    const lut = colormapTable(name);
    expect(lut.length).toBe(256 * 3);
    expect(Array.from(lut.subarray(0, 3))).not.toEqual(Array.from(lut.subarray(765, 768)));
  });
  it('jet is dark blue at 0, dark red at 1', () => {
    expect(Array.from(applyColormap([0, 1], 'jet'))).toEqual([0, 0, 128, 128, 0, 0]);
  });
  it('turbo is dark at 0 and red at 1; NaN counts as 0', () => {
    const c = Array.from(applyColormap([0, 1, NaN], 'turbo'));
    expect(c[0]! + c[1]! + c[2]!).toBeLessThan(150);
    expect(c[3]! > c[4]! && c[3]! > c[5]!).toBe(true);
    expect(c.slice(6)).toEqual(c.slice(0, 3));
  });
});

describe('renderOverlay', () => {
  it('enlarges a 32x32 image to a readable size, beside its overlay and a colour bar', async () => {
    const png = await renderOverlay({
      image: image(32, 32),
      map: ramp(7, 7),
      caption: ['cat (42.0%)', 'Grad-CAM'],
    });
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(2 * 448);
    expect(meta.height).toBeGreaterThan(448);
  });
  it('keeps a portrait photo upright', async () => {
    const png = await renderOverlay({
      image: image(334, 500),
      map: ramp(334, 500),
      size: 300,
      colormap: 'viridis',
      alpha: 0.3,
    });
    const meta = await sharp(png).metadata();
    expect(meta.height).toBeGreaterThan(300);
    expect(meta.width).toBeLessThan(2 * 300);
  });
});

describe('renderMapGrid', () => {
  it('draws images above their maps', async () => {
    const cells = [0, 1, 2].map((i) => ({
      image: image(32, 32),
      map: ramp(224, 224),
      title: [`#${i}`, 'cat'],
    }));
    const png = await renderMapGrid(cells, { cellSize: 100, title: 'Saliency' });
    const meta = await sharp(png).metadata();
    expect(meta.width).toBeGreaterThan(300);
    expect(meta.height).toBeGreaterThan(200);
  });
});
