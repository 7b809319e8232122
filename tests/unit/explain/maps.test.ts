import { describe, expect, it } from 'vitest';
import { gaussianBlur } from '../../../src/explain/faithfulness.ts';
import { normalizeMap, resizeMap } from '../../../src/explain/heat-map.ts';
import { describeRegions } from '../../../src/explain/regions.ts';
import { parseClassTarget, resolveClassIndex, shortLabel } from '../../../src/explain/targets.ts';

describe('normalizeMap', () => {
  it('scales to [0, 1]', () => {
    expect(Array.from(normalizeMap([1, 2, 3, 5], 2, 2).data)).toEqual([0, 0.25, 0.5, 1]);
  });
  it.each([
    ['empty', [0, 0, 0, 0]],
    ['empty', [-1, -2, -3, 0]],
    ['flat', [0.3, 0.3, 0.3, 0.3]],
    ['empty', [NaN, Infinity, 0, 0]],
  ] as const)('zeroes a map it cannot scale, noting %s', (note, values) => {
    const m = normalizeMap(values, 2, 2);
    expect(m.note).toBe(note);
    expect(Array.from(m.data)).toEqual([0, 0, 0, 0]);
  });
});

describe('resizeMap', () => {
  it('scales height and width separately', () => {
    const m = resizeMap({ data: Float32Array.of(0, 1, 0, 1, 0, 1), width: 3, height: 2 }, 5, 9);
    expect([m.width, m.height, m.data.length]).toEqual([5, 9, 45]);
    expect(Math.max(...m.data)).toBeLessThanOrEqual(1);
  });
});

describe('describeRegions', () => {
  it('finds the share of heat per ninth and the blob around the peak', () => {
    const data = new Float32Array(9 * 9);
    for (let y = 6; y < 9; y++) for (let x = 0; x < 3; x++) data[y * 9 + x] = 1;
    data[0] = 0.4; // a weak spot elsewhere
    const r = describeRegions({ data, width: 9, height: 9 });
    expect(r.thirds[6]).toBeCloseTo(9 / 9.4, 5);
    expect(r.thirds[0]).toBeCloseTo(0.4 / 9.4, 5);
    expect(r.blob).toMatchObject({ x: 0, y: 6, width: 3, height: 3 });
    expect(r.blob!.area).toBeCloseTo(9 / 81, 5);
  });
  it('has no blob for an empty map', () => {
    const r = describeRegions({ data: new Float32Array(4), width: 2, height: 2 });
    expect(r.blob).toBeUndefined();
    expect(r.thirds.every((v) => v === 0)).toBe(true);
  });
});

describe('class targets', () => {
  const names = [
    'tench, Tinca tinca',
    'great grey owl, great gray owl, Strix nebulosa',
    'grey whale',
    'tusker',
  ];
  it.each([
    ['', 3],
    ['1', 1],
    ['Tusker', 3],
    ['great gray owl', 1],
    ['tinca', 0],
  ])('resolves "%s"', (text, index) => {
    expect(resolveClassIndex(parseClassTarget(text), names, [0, 0.1, 0.2, 0.7])).toBe(index);
  });
  it.each(['9', 'grey', 'zebra'])('rejects "%s" with a message naming classes', (text) => {
    expect(() => resolveClassIndex(parseClassTarget(text), names, [0, 0, 0, 1])).toThrow(/class/);
  });
  it('shortens a name to its first synonym', () => {
    expect(shortLabel(names[1]!)).toBe('great grey owl');
  });
});

describe('gaussianBlur', () => {
  it('keeps a uniform image and spreads a point', () => {
    const flat = { data: new Float32Array(25).fill(0.5), width: 5, height: 5, channels: 1 };
    expect(Array.from(gaussianBlur(flat, 1)).every((v) => Math.abs(v - 0.5) < 1e-6)).toBe(true);
    const dot = new Float32Array(25);
    dot[12] = 1;
    const b = gaussianBlur({ ...flat, data: dot }, 1);
    expect(b[12]).toBeLessThan(1);
    expect(b[11]).toBeGreaterThan(0);
  });
});
