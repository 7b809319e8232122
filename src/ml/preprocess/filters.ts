/**
 * Small image filters on single-channel float images (row-major `Float32Array`, `width * height`).
 * Plain typed-array loops: each is a few passes over the pixels, with no allocation per pixel.
 */

/** A single-channel float image. */
export interface Plane {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

/**
 * Running max (or min) over a window of `2r + 1` samples of one line, in O(1) per sample whatever
 * `r` (van Herk 1992; Gil & Werman 1993): block-wise prefix and suffix extrema, then the window's
 * extremum is the better of one suffix and one prefix. Samples beyond the ends are ignored.
 */
function runningExtremum(
  src: Float32Array,
  dst: Float32Array,
  start: number,
  stride: number,
  n: number,
  r: number,
  max: boolean,
  g: Float32Array,
  h: Float32Array,
): void {
  const k = 2 * r + 1;
  const m = n + 2 * r;
  const neutral = max ? -Infinity : Infinity;
  const at = (i: number): number => {
    const j = i - r;
    return j < 0 || j >= n ? neutral : (src[start + j * stride] ?? neutral);
  };
  const better = max
    ? (a: number, b: number) => (a > b ? a : b)
    : (a: number, b: number) => (a < b ? a : b);
  for (let i = 0; i < m; i++) {
    const v = at(i);
    g[i] = i % k === 0 ? v : better(g[i - 1] ?? neutral, v);
  }
  for (let i = m - 1; i >= 0; i--) {
    const v = at(i);
    h[i] = i % k === k - 1 || i === m - 1 ? v : better(h[i + 1] ?? neutral, v);
  }
  for (let x = 0; x < n; x++) {
    dst[start + x * stride] = better(h[x] ?? neutral, g[x + 2 * r] ?? neutral);
  }
}

/** Max (dilation) or min (erosion) over a `(2r+1)`-pixel square, separably. */
export function squareExtremum(p: Plane, r: number, max: boolean): Plane {
  if (r <= 0) return { ...p, data: p.data.slice() };
  const { width: w, height: hgt } = p;
  const tmp = new Float32Array(w * hgt);
  const out = new Float32Array(w * hgt);
  const len = Math.max(w, hgt) + 2 * r;
  const g = new Float32Array(len);
  const h = new Float32Array(len);
  for (let y = 0; y < hgt; y++) runningExtremum(p.data, tmp, y * w, 1, w, r, max, g, h);
  for (let x = 0; x < w; x++) runningExtremum(tmp, out, x, w, hgt, r, max, g, h);
  return { data: out, width: w, height: hgt };
}

/** Grey-level closing (dilation then erosion): fills dark structures narrower than the square. */
export function closing(p: Plane, r: number): Plane {
  return squareExtremum(squareExtremum(p, r, true), r, false);
}

/** Mean over a `(2r+1)`-pixel square (window clipped at the borders), separably with running sums. */
export function boxBlur(p: Plane, r: number): Plane {
  const { width: w, height: h } = p;
  const tmp = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  const pass = (
    src: Float32Array,
    dst: Float32Array,
    n: number,
    lines: number,
    step: number,
    lineStep: number,
  ) => {
    for (let l = 0; l < lines; l++) {
      const base = l * lineStep;
      let sum = 0;
      let count = 0;
      for (let i = 0; i < Math.min(r, n); i++) {
        sum += src[base + i * step] ?? 0;
        count++;
      }
      for (let i = 0; i < n; i++) {
        const add = i + r;
        if (add < n) {
          sum += src[base + add * step] ?? 0;
          count++;
        }
        const drop = i - r - 1;
        if (drop >= 0) {
          sum -= src[base + drop * step] ?? 0;
          count--;
        }
        dst[base + i * step] = sum / count;
      }
    }
  };
  pass(p.data, tmp, w, h, 1, w);
  pass(tmp, out, h, w, w, 1);
  return { data: out, width: w, height: h };
}

/**
 * Mean over a 3x3 square, borders clamped: the fast path of {@link boxBlur} for the full-size
 * image, where it runs on every pixel.
 */
export function blur3x3(p: Plane): Plane {
  const { width: w, height: h, data: src } = p;
  const tmp = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const l = x > 0 ? x - 1 : x;
      const r = x < w - 1 ? x + 1 : x;
      tmp[row + x] = (src[row + l]! + src[row + x]! + src[row + r]!) / 3;
    }
  }
  for (let y = 0; y < h; y++) {
    const up = (y > 0 ? y - 1 : y) * w;
    const row = y * w;
    const down = (y < h - 1 ? y + 1 : y) * w;
    for (let x = 0; x < w; x++) out[row + x] = (tmp[up + x]! + tmp[row + x]! + tmp[down + x]!) / 3;
  }
  return { data: out, width: w, height: h };
}

/** Shrinks by an integer factor, averaging each `f x f` block (partial blocks at the edges too). */
export function downsample(p: Plane, f: number): Plane {
  const w = Math.ceil(p.width / f);
  const h = Math.ceil(p.height / f);
  const sum = new Float32Array(w * h);
  const count = new Float32Array(w * h);
  for (let y = 0; y < p.height; y++) {
    const row = Math.floor(y / f) * w;
    for (let x = 0; x < p.width; x++) {
      const i = row + Math.floor(x / f);
      sum[i] = (sum[i] ?? 0) + (p.data[y * p.width + x] ?? 0);
      count[i] = (count[i] ?? 0) + 1;
    }
  }
  for (let i = 0; i < w * h; i++) sum[i] = (sum[i] ?? 0) / (count[i] || 1);
  return { data: sum, width: w, height: h };
}

/**
 * Bilinear interpolation of a coarse grid whose sample `(i, j)` sits at `((i + 0.5) * cellW,
 * (j + 0.5) * cellH)` of a `width x height` image; clamped beyond the outer samples.
 */
export function upsampleBilinear(coarse: Plane, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  const sx = coarse.width / width;
  const sy = coarse.height / height;
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), coarse.width - 1);
    const x0 = Math.floor(fx);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, coarse.width - 1);
    fxs[x] = fx - x0;
  }
  const c = coarse.data;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), coarse.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, coarse.height - 1);
    const ty = fy - y0;
    const r0 = y0 * coarse.width;
    const r1 = y1 * coarse.width;
    for (let x = 0; x < width; x++) {
      const a = x0s[x] ?? 0;
      const b = x1s[x] ?? 0;
      const tx = fxs[x] ?? 0;
      const top = (c[r0 + a] ?? 0) * (1 - tx) + (c[r0 + b] ?? 0) * tx;
      const bottom = (c[r1 + a] ?? 0) * (1 - tx) + (c[r1 + b] ?? 0) * tx;
      out[y * width + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/**
 * A quantile of each cell of a `cols x rows` grid over an 8-bit-valued image (sampled every
 * `step` pixels), as a coarse {@link Plane} for {@link upsampleBilinear}.
 */
export function cellQuantiles(
  p: Plane,
  cols: number,
  rows: number,
  q: number,
  step: number,
): Plane {
  const out = new Float32Array(cols * rows);
  const hist = new Uint32Array(256);
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      hist.fill(0);
      const x0 = Math.floor((i * p.width) / cols);
      const x1 = Math.floor(((i + 1) * p.width) / cols);
      const y0 = Math.floor((j * p.height) / rows);
      const y1 = Math.floor(((j + 1) * p.height) / rows);
      let n = 0;
      for (let y = y0; y < y1; y += step) {
        for (let x = x0; x < x1; x += step) {
          const v = Math.max(0, Math.min(255, Math.round(p.data[y * p.width + x] ?? 0)));
          hist[v] = (hist[v] ?? 0) + 1;
          n++;
        }
      }
      out[j * cols + i] = histogramQuantile(hist, n, q);
    }
  }
  return { data: out, width: cols, height: rows };
}

/** The bin at which the cumulative count of a histogram reaches `q * n`. */
export function histogramQuantile(hist: Uint32Array, n: number, q: number): number {
  const target = q * n;
  let acc = 0;
  for (let b = 0; b < hist.length; b++) {
    acc += hist[b] ?? 0;
    if (acc >= target && acc > 0) return b;
  }
  return hist.length - 1;
}

/**
 * Otsu's threshold (N. Otsu, "A threshold selection method from gray-level histograms", IEEE
 * Trans. SMC 9(1), 1979): the bin that maximises the between-class variance
 * `w0 * w1 * (mu0 - mu1)^2` of the two classes it splits the histogram into. Returns the first
 * bin of the upper class.
 */
export function otsuThreshold(hist: Uint32Array): number {
  let total = 0;
  let sumAll = 0;
  for (let b = 0; b < hist.length; b++) {
    total += hist[b] ?? 0;
    sumAll += b * (hist[b] ?? 0);
  }
  let w0 = 0;
  let sum0 = 0;
  let best = -1;
  let bestBin = Math.floor(hist.length / 2);
  for (let b = 0; b < hist.length - 1; b++) {
    w0 += hist[b] ?? 0;
    sum0 += b * (hist[b] ?? 0);
    const w1 = total - w0;
    if (w0 === 0 || w1 === 0) continue;
    const mu0 = sum0 / w0;
    const mu1 = (sumAll - sum0) / w1;
    const between = w0 * w1 * (mu0 - mu1) ** 2;
    if (between > best) {
      best = between;
      bestBin = b + 1;
    }
  }
  return bestBin;
}
