import type { PRNG } from 'seedrandom';

/** Ranges of the random affine distortion applied by {@link augmentDigitBatch}. */
export interface DigitAugmentOptions {
  /** Largest rotation either way, degrees. */
  readonly maxRotationDeg: number;
  /** Largest relative change of scale either way (0.1 = 90%..110%). */
  readonly maxScale: number;
  /** Largest shift either way, pixels. */
  readonly maxShiftPx: number;
  /** Largest shear either way (tangent). */
  readonly maxShear: number;
}

/** Mild distortions of the kind that separate a phone photo from an MNIST scan. */
export const DEFAULT_DIGIT_AUGMENT: DigitAugmentOptions = {
  maxRotationDeg: 10,
  maxScale: 0.1,
  maxShiftPx: 2,
  maxShear: 0.15,
};

/**
 * The inverse of the forward map `A = R(theta) * Shear(shear) * diag(scaleX, scaleY)` as
 * `[a, b, d, e]` of the 2x2 matrix `[[a, b], [d, e]]`: output pixel offsets from the centre times
 * it give the source offsets to sample.
 * @param theta rotation, radians. @param shear horizontal shear (tangent).
 */
export function inverseAffine(
  theta: number,
  shear: number,
  scaleX: number,
  scaleY: number,
): [number, number, number, number] {
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const a = cos * scaleX;
  const b = (cos * shear - sin) * scaleY;
  const d = sin * scaleX;
  const e = (sin * shear + cos) * scaleY;
  const det = a * e - b * d;
  return [e / det, -b / det, -d / det, a / det];
}

/**
 * Writes a randomly distorted copy of each `size x size` grayscale image into `out` (float32,
 * [0, 1]) by an inverse-mapped affine transform about the image centre with bilinear
 * sampling: the elastic-free part of the augmentations of Simard et al. 2003 ("Best practices for
 * convolutional neural networks applied to visual document analysis").
 *
 * @param src uint8 images `[n, size, size]` row-major, values 0..255.
 * @param indices which images of `src` to take, in order.
 * @param out float32 `[indices.length, size, size]`, overwritten.
 */
export function augmentDigitBatch(
  src: Uint8Array,
  size: number,
  indices: ArrayLike<number>,
  out: Float32Array,
  rng: PRNG,
  opt: DigitAugmentOptions = DEFAULT_DIGIT_AUGMENT,
): void {
  const area = size * size;
  const c = (size - 1) / 2;
  const u = (r: number): number => (rng() * 2 - 1) * r;
  for (let k = 0; k < indices.length; k++) {
    const base = (indices[k] ?? 0) * area;
    const theta = (u(opt.maxRotationDeg) * Math.PI) / 180;
    const scale = 1 + u(opt.maxScale);
    const shear = u(opt.maxShear);
    const tx = u(opt.maxShiftPx);
    const ty = u(opt.maxShiftPx);
    const [ia, ib, id, ie] = inverseAffine(theta, shear, scale, scale);
    const o = k * area;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const dx = x - c - tx;
        const dy = y - c - ty;
        const sx = ia * dx + ib * dy + c;
        const sy = id * dx + ie * dy + c;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        const p = (yy: number, xx: number): number =>
          yy < 0 || yy >= size || xx < 0 || xx >= size ? 0 : (src[base + yy * size + xx] ?? 0);
        const v =
          (p(y0, x0) * (1 - fx) + p(y0, x0 + 1) * fx) * (1 - fy) +
          (p(y0 + 1, x0) * (1 - fx) + p(y0 + 1, x0 + 1) * fx) * fy;
        out[o + y * size + x] = v / 255;
      }
    }
  }
}

/**
 * The standard CIFAR augmentation (He et al. 2016, §4.2; the course's recommendation): pad each
 * image by `pad` pixels with zeros, take a random `h x w` crop, and flip it left-right with
 * probability 1/2. Writes float32 [0, 1] values.
 *
 * @param src uint8 images `[n, h, w, c]` row-major, 0..255.
 * @param indices which images of `src` to take, in order.
 * @param out float32 `[indices.length, h, w, c]`, overwritten.
 * @param pad largest shift either way, pixels (default 4).
 */
export function augmentCropFlipBatch(
  src: Uint8Array,
  shape: { readonly height: number; readonly width: number; readonly channels: number },
  indices: ArrayLike<number>,
  out: Float32Array,
  rng: PRNG,
  pad = 4,
): void {
  const { height: h, width: w, channels: ch } = shape;
  const per = h * w * ch;
  for (let k = 0; k < indices.length; k++) {
    const base = (indices[k] ?? 0) * per;
    const dy = Math.floor(rng() * (2 * pad + 1)) - pad;
    const dx = Math.floor(rng() * (2 * pad + 1)) - pad;
    const flip = rng() < 0.5;
    const o = k * per;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let x = 0; x < w; x++) {
        const sx = (flip ? w - 1 - x : x) + dx;
        const to = o + (y * w + x) * ch;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          out.fill(0, to, to + ch);
          continue;
        }
        const from = base + (sy * w + sx) * ch;
        for (let c = 0; c < ch; c++) out[to + c] = (src[from + c] ?? 0) / 255;
      }
    }
  }
}
