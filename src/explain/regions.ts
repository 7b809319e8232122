/**
 * Where a map's heat is, as numbers a sentence can be made of: the share of its mass in each
 * ninth of the image (thirds across and down), and the main hot blob's bounding box.
 */
import { argMax, type HeatMap } from './heat-map.ts';

/** A box in map pixels. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Where the heat of a map lies. */
export interface MapRegions {
  /**
   * Share of the map's mass in each cell of a 3x3 grid, row-major from the top left (index 4
   * is the centre); sums to 1, or all 0 for an empty map.
   */
  readonly thirds: readonly number[];
  /** The map's largest value's position, map pixels; absent for an empty map (no heat anywhere). */
  readonly peak?: { readonly x: number; readonly y: number };
  /**
   * The connected region (4-neighbours) around the peak where the map is at least `threshold`
   * of its peak: its bounding box, its share of the image's area, and the share of the map's
   * mass inside the box. Absent for an empty map.
   */
  readonly blob?: Box & { readonly area: number; readonly mass: number };
}

/**
 * Measures where a map's heat is.
 * @param threshold the blob's level, as a share of the peak value (default 0.5).
 * @example
 * describeRegions(map).thirds[4]; // share of the heat in the centre ninth
 */
export function describeRegions(map: HeatMap, threshold = 0.5): MapRegions {
  const { data, width, height } = map;
  const thirds = new Array<number>(9).fill(0);
  let total = 0;
  for (let y = 0; y < height; y++) {
    const row = Math.min(2, Math.floor((3 * y) / height));
    for (let x = 0; x < width; x++) {
      const v = data[y * width + x] ?? 0;
      thirds[row * 3 + Math.min(2, Math.floor((3 * x) / width))]! += v;
      total += v;
    }
  }
  const peak = argMax(map);
  if (!(total > 0) || !(peak.value > 0)) {
    return { thirds: thirds.map(() => 0) };
  }
  const level = threshold * peak.value;
  const seen = new Uint8Array(width * height);
  const stack = [peak.y * width + peak.x];
  seen[stack[0]!] = 1;
  let [x0, y0, x1, y1] = [peak.x, peak.y, peak.x, peak.y];
  while (stack.length > 0) {
    const i = stack.pop()!;
    const x = i % width;
    const y = (i - x) / width;
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
    const next = [
      x > 0 ? i - 1 : -1,
      x < width - 1 ? i + 1 : -1,
      y > 0 ? i - width : -1,
      y < height - 1 ? i + width : -1,
    ];
    for (const j of next) {
      if (j >= 0 && !seen[j] && (data[j] ?? 0) >= level) {
        seen[j] = 1;
        stack.push(j);
      }
    }
  }
  let inBox = 0;
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) inBox += data[y * width + x] ?? 0;
  const box = { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
  return {
    thirds: thirds.map((v) => v / total),
    peak: { x: peak.x, y: peak.y },
    blob: { ...box, area: (box.width * box.height) / (width * height), mass: inBox / total },
  };
}
