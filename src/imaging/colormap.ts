/**
 * Colour maps for heat maps. Turbo (Mikhailov 2019) is the default: perceptually ordered and
 * readable in greyscale print, unlike jet, which is kept because the course's references use it.
 * Turbo and viridis come from d3-scale-chromatic (the maintained d3 colour maps).
 */
import { interpolateTurbo, interpolateViridis } from 'd3-scale-chromatic';

/** The colour maps offered. */
export const COLORMAPS = ['turbo', 'jet', 'viridis'] as const;

/** One of {@link COLORMAPS}. */
export type ColormapName = (typeof COLORMAPS)[number];

/** True when `s` names a colour map. */
export function isColormap(s: string): s is ColormapName {
  return (COLORMAPS as readonly string[]).includes(s);
}

const clamp = (v: number): number => Math.min(1, Math.max(0, v));

/**
 * MATLAB's jet: piecewise linear, dark blue -> cyan -> yellow -> dark red
 * (r = 1.5 - |4t - 3|, g = 1.5 - |4t - 2|, b = 1.5 - |4t - 1|, clamped).
 */
function jet(t: number): [number, number, number] {
  return [1.5 - Math.abs(4 * t - 3), 1.5 - Math.abs(4 * t - 2), 1.5 - Math.abs(4 * t - 1)].map(
    (v) => Math.round(clamp(v) * 255),
  ) as [number, number, number];
}

function fromCss(css: string): [number, number, number] {
  if (css.startsWith('#')) {
    const n = parseInt(css.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  const [r = 0, g = 0, b = 0] = (css.match(/\d+(\.\d+)?/g) ?? []).map(Number);
  return [r, g, b];
}

const LUT_SIZE = 256;
const luts = new Map<ColormapName, Uint8Array>();

/** The colour map as a 256-entry RGB table. */
export function colormapTable(name: ColormapName): Uint8Array {
  let lut = luts.get(name);
  if (!lut) {
    lut = new Uint8Array(LUT_SIZE * 3);
    for (let i = 0; i < LUT_SIZE; i++) {
      const t = i / (LUT_SIZE - 1);
      const rgb =
        name === 'jet'
          ? jet(t)
          : fromCss(name === 'turbo' ? interpolateTurbo(t) : interpolateViridis(t));
      lut.set(rgb, i * 3);
    }
    luts.set(name, lut);
  }
  return lut;
}

/**
 * Colours values in [0, 1] (out-of-range values clamped).
 * @returns interleaved RGB bytes, 3 per value.
 * @example
 * applyColormap(Float32Array.of(0, 1), 'turbo'); // dark blue-violet, then dark red
 */
export function applyColormap(values: ArrayLike<number>, name: ColormapName = 'turbo'): Uint8Array {
  const lut = colormapTable(name);
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    const k = Math.round(clamp(Number.isFinite(v) ? v : 0) * (LUT_SIZE - 1)) * 3;
    out[i * 3] = lut[k] ?? 0;
    out[i * 3 + 1] = lut[k + 1] ?? 0;
    out[i * 3 + 2] = lut[k + 2] ?? 0;
  }
  return out;
}
