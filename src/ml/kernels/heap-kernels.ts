import { readFileSync } from 'node:fs';
import { geometryArgs, type ConvGeometry } from './wasm-gemm.ts';
import { nativeKernels, type NativeKernelAddon } from './native-kernels.ts';
import type { WasmBackendLike } from './wasm-heap.ts';

// tsconfig's libs (ES2023, no DOM) and @types/node 20 leave WebAssembly's JS API undeclared.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The C functions of `wasm/heap-kernels.c`; pointers are byte offsets into the backend's heap. */
interface HeapKernelExports {
  sum_rows(x: number, rows: number, c: number, out: number, acc: number): void;
  moments_rows(x: number, rows: number, c: number, out: number, acc: number): void;
  broadcast_rows(
    op: number,
    a: number,
    rows: number,
    c: number,
    v: number,
    out: number,
    vFirst: number,
  ): void;
  normalize_rows(
    x: number,
    rows: number,
    c: number,
    m: number,
    a: number,
    b: number,
    out: number,
  ): void;
  max_pool_grad(...args: number[]): void;
  conv2d_filter_grad_c1(...args: number[]): void;
  adam_update(...args: number[]): void;
  conv2d_input_grad_narrow(...args: number[]): void;
  count_nonzero(x: number, n: number): number;
  all_finite(x: number, n: number): number;
  conv2d_filter_grad_scatter(...args: number[]): void;
  winograd_filter(w: number, c: number, k: number, flip: number, u: number): void;
  winograd_conv3x3(...args: number[]): void;
  winograd_filter_grad3x3(...args: number[]): void;
  batch_norm_grad(...args: number[]): void;
  batch_norm_sums(...args: number[]): void;
  batch_norm_train_dx(...args: number[]): void;
  conv2d_direct(...args: number[]): void;
  clip_grad(x: number, dy: number, n: number, lo: number, hi: number, out: number): void;
  relu_grad(x: number, dy: number, n: number, out: number): void;
  relu_clip_grad(x: number, dy: number, n: number, hi: number, out: number): void;
  depthwise_conv2d(...args: number[]): void;
  depthwise_conv2d_input_grad(...args: number[]): void;
  depthwise_conv2d_filter_grad(...args: number[]): void;
}

/**
 * Kernels whose WebAssembly build measured faster than the native 128-bit one
 * (`bench/native-kernels.ts`, CPU time, batch 128, AVX-512 machine: 28×28×16 depthwise forward
 * 5.9 against 4.4 ms, filter gradient 4.4 against 2.7 ms): kept on wasm where no wide native
 * kernels run (a CPU with neither AVX2 nor AVX-512, arm64). Where they run (`native/src/wide.c`),
 * the native depthwise kernels are the faster ones.
 */
const WASM_FASTER_WITHOUT_WIDE: ReadonlySet<string> = new Set([
  'depthwise_conv2d',
  'depthwise_conv2d_filter_grad',
]);

/** Tiles per block of `winograd_conv3x3` (`WINO_BLOCK` in wasm/winograd.c). */
const WINOGRAD_BLOCK = 24;

/**
 * Whether {@link HeapKernels.winogradConv3x3} and {@link HeapKernels.winogradInputGrad3x3} take
 * this convolution: 3×3 at stride 1, with channel counts whose SIMD lane groups they assume (the
 * conv's input channels a multiple of 4, its outputs of 8, the other way round for the input
 * gradient).
 */
export function winogradFits(g: ConvGeometry, direction: 'forward' | 'input-grad'): boolean {
  const [ci, co] =
    direction === 'forward' ? [g.inChannels, g.outChannels] : [g.outChannels, g.inChannels];
  return (
    g.filterHeight === 3 &&
    g.filterWidth === 3 &&
    g.strideHeight === 1 &&
    g.strideWidth === 1 &&
    ci % 4 === 0 &&
    co % 8 === 0
  );
}

/**
 * The float32 scalars of one Adam step (Kingma & Ba, ICLR 2015), as tfjs-core 4.22's
 * `AdamOptimizer` forms them: `β₁`, `1 − β₁`, `β₂`, `1 − β₂`, the bias corrections `1 − β₁ᵗ` and
 * `1 − β₂ᵗ`, `ε` and `−learning rate`.
 */
export interface AdamScalars {
  readonly beta1: number;
  readonly oneMinusBeta1: number;
  readonly beta2: number;
  readonly oneMinusBeta2: number;
  readonly correction1: number;
  readonly correction2: number;
  readonly epsilon: number;
  readonly negLearningRate: number;
}

/** The widest filter row (`fw·inC` floats) {@link HeapKernels.conv2dInputGradNarrow} takes. */
export const NARROW_FLOATS = 32;

/** The binary ops of {@link HeapKernels.broadcastRows}, numbered as `broadcast_rows` takes them. */
export const BROADCAST_OPS = { add: 0, sub: 1, mul: 2, div: 3 } as const;
export type BroadcastOp = keyof typeof BROADCAST_OPS;

/**
 * Float32 kernels compiled from `wasm/heap-kernels.c`, `wasm/winograd.c` and `wasm/depthwise.c`
 * to WebAssembly SIMD
 * (memory-bound reductions and broadcasts, batch norm and its gradient, the max-pool gradient,
 * the fused Adam step, a direct convolution for few input channels, LeNet-shaped conv gradients,
 * Winograd F(4×4, 3×3) convolutions with both their gradients, and depthwise convolutions with
 * both theirs), running in place on
 * tfjs-backend-wasm's heap: the module imports the backend's own `WebAssembly.Memory`, so
 * tensors are read and written where they live (the GEMM module of `wasm-gemm.ts` has its own
 * memory and copies operands in). All offsets are byte offsets of
 * float32 data on that heap (`dataIdMap.get(dataId).memoryOffset`).
 */
export class HeapKernels {
  private readonly exports: HeapKernelExports;
  private readonly memory: { readonly buffer: ArrayBuffer };
  private readonly malloc: (bytes: number) => number;
  private readonly free: (at: number) => void;
  private readonly native: NativeKernelAddon | undefined;

  /**
   * @param memory the backend's `WebAssembly.Memory` (`backend.wasm.asm.memory`)
   * @param malloc the backend's allocator (`backend.wasm._malloc`, bytes to a byte offset)
   * @param free its `_free`
   * @param native the native build of the same kernels (`native-kernels.ts`), which then runs in
   *   place of each WebAssembly function it has, on the same heap (its buffer taken afresh on
   *   every call, since the memory can grow)
   */
  constructor(
    bytes: Uint8Array,
    memory: { readonly buffer: ArrayBuffer },
    malloc: (bytes: number) => number,
    free: (at: number) => void,
    native?: NativeKernelAddon,
  ) {
    this.memory = memory;
    this.native = native;
    this.malloc = malloc;
    this.free = free;
    const instance = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(bytes), {
      env: { memory },
    });
    const wasm = instance.exports as Record<string, unknown>;
    const exports: Record<string, unknown> = { ...wasm };
    if (native !== undefined) {
      const wideActive = native['wideActive'];
      const wide = typeof wideActive === 'function' ? (wideActive as () => number)() : 0;
      for (const name of Object.keys(wasm)) {
        if (wide === 0 && WASM_FASTER_WITHOUT_WIDE.has(name)) continue;
        const fn = native[name];
        if (typeof fn === 'function') {
          const call = fn as (heap: ArrayBuffer, ...args: number[]) => unknown;
          exports[name] = (...args: number[]) => call(memory.buffer, ...args);
        }
      }
    }
    this.exports = exports as unknown as HeapKernelExports;
    this.engine = native === undefined ? 'wasm' : `native ${native.isa}`;
  }

  /** `wasm`, or `native <isa>` when the native build runs the kernels it has. */
  readonly engine: string;

  /**
   * `out[j] = Σ_{r < rows} x[r·c + j]` for `j < c`: the sum over every axis but the last of a
   * row-major `[rows, c]` float32 array (per-channel sums of an NHWC tensor). Float32 SIMD lanes
   * over blocks of 256 rows, the blocks' partial sums in float64 (scratch of `8c` bytes, taken
   * from and returned to the backend's allocator), so the error does not grow with the rows as
   * a float32 running sum's does.
   */
  sumRows(x: number, rows: number, c: number, out: number): void {
    this.withScratch(8 * c, (acc) => this.exports.sum_rows(x, rows, c, out, acc));
  }

  /**
   * Per-channel batch statistics of a row-major `[rows, c]` float32 array (every axis of an NHWC
   * tensor but the last) in two passes: `out[j]` the mean and `out[c + j]` the biased variance
   * `mean((x − mean)²)`, as `tf.moments` defines them; float32 lanes within blocks of 256 rows,
   * float64 across blocks (scratch of `8c` bytes), so more accurate than tfjs-core's float32
   * `Mean`, `Sub`, `Square`, `Mean` chain, though not bit for bit the same.
   */
  momentsRows(x: number, rows: number, c: number, out: number): void {
    this.withScratch(8 * c, (acc) => this.exports.moments_rows(x, rows, c, out, acc));
  }

  /**
   * `out[r·c + j] = (x[r·c + j] − m[j])·a[j] + b[j]`: batch norm per channel over a row-major
   * `[rows, c]` float32 array, with `m` the mean, `a = scale / √(variance + ε)` and `b` the
   * offset (`c` values each, copied to scratch on the heap).
   */
  normalizeRows(
    x: number,
    rows: number,
    c: number,
    [m, a, b]: readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>],
    out: number,
  ): void {
    this.withScratch(12 * c, (at) => {
      const mab = new Float32Array(this.memory.buffer, at, 3 * c);
      mab.set(m);
      mab.set(a, c);
      mab.set(b, 2 * c);
      this.exports.normalize_rows(x, rows, c, at, at + 4 * c, at + 8 * c, out);
    });
  }

  /**
   * Max-pooling gradient `dx [batch, h, w, c]` of NHWC `x` from `dy [batch, oh, ow, c]`, with
   * TensorFlow's semantics: each window's gradient goes to its maximum, the first in row-major
   * order on ties; padding never wins; overlapping windows add. `outChannels` and the filter's
   * channels of `g` are unused.
   */
  maxPoolGrad(g: ConvGeometry, x: number, dy: number, dx: number): void {
    this.exports.max_pool_grad(x, dy, dx, ...geometryArgs(g));
  }

  /**
   * `dw [fh, fw, 1, outC]` of a stride-1 convolution of a one-channel NHWC `x`, from `dy [batch,
   * oh, ow, outC]`: SIMD along each output row (see `conv2d_filter_grad_c1`), float32 sums within
   * an image and float64 across images.
   *
   * @throws {RangeError} when `g` has more than one input channel or a stride other than 1
   */
  conv2dFilterGradC1(g: ConvGeometry, x: number, dy: number, dw: number): void {
    const { xpBytes, owp } = oneChannelScratch(g);
    const taps = g.filterHeight * g.filterWidth * g.outChannels;
    const dytBytes = 4 * g.outHeight * g.outChannels * owp;
    const vaccBytes = 16 * taps;
    this.withScratch(xpBytes + dytBytes + vaccBytes + 8 * taps, (xp) => {
      const dyt = xp + xpBytes;
      const vacc = dyt + dytBytes;
      this.exports.conv2d_filter_grad_c1(
        x,
        dy,
        dw,
        ...geometryArgs(g),
        xp,
        dyt,
        vacc,
        vacc + vaccBytes,
      );
    });
  }

  /**
   * `dx [batch, h, w, inC]` of a convolution whose filter rows are narrow (`fw·inC ≤ 32` floats,
   * LeNet's 5×5 over 6 channels), from `dy [batch, oh, ow, outC]` and the filter `[fh, fw, inC,
   * outC]`, any stride and padding: a scatter of each dy pixel's filter-row segments (see
   * `conv2d_input_grad_narrow`), skipping zero gradients.
   *
   * @throws {RangeError} when `fw·inC > 32`
   */
  conv2dInputGradNarrow(g: ConvGeometry, dy: number, filter: number, dx: number): void {
    if (g.filterWidth * g.inChannels > NARROW_FLOATS) {
      throw new RangeError(
        `conv2dInputGradNarrow takes filter rows of at most ${NARROW_FLOATS} floats`,
      );
    }
    const wtBytes = 4 * NARROW_FLOATS * g.filterHeight * g.outChannels;
    this.withScratch(wtBytes + 4 * NARROW_FLOATS + 4 * g.outChannels, (wt) => {
      this.exports.conv2d_input_grad_narrow(
        dy,
        filter,
        dx,
        ...geometryArgs(g),
        wt,
        wt + wtBytes,
        wt + wtBytes + 4 * NARROW_FLOATS,
      );
    });
  }

  /**
   * `y [batch, outHeight, outWidth, outChannels]`, the stride-1 convolution of
   * `x [batch, inHeight, inWidth, inChannels]` with `filter [fh, fw, inChannels, outChannels]`
   * (zero padding by `padTop`/`padLeft`), plus `bias [outChannels]` (byte offset, or 0 for none)
   * and ReLU if `relu`, directly: on a zero-padded copy of each image, four output pixels by eight
   * channels per step, each input value broadcast (`heap-kernels.c`'s `conv2d_direct`, for few
   * input channels).
   *
   * @throws {RangeError} unless stride 1, or when scratch cannot be allocated
   */
  conv2dDirect(
    g: ConvGeometry,
    x: number,
    filter: number,
    bias: number,
    relu: boolean,
    y: number,
  ): void {
    if (g.strideHeight !== 1 || g.strideWidth !== 1) {
      throw new RangeError('conv2dDirect takes stride-1 convolutions');
    }
    const xpBytes = paddedImageBytes(g);
    const co8 = Math.ceil(g.outChannels / 8) * 8;
    const wpBytes = 4 * (g.filterHeight * g.filterWidth * g.inChannels + 1) * co8;
    this.withScratch(xpBytes + wpBytes, (xp) => {
      this.exports.conv2d_direct(
        x,
        filter,
        bias,
        relu ? 1 : 0,
        y,
        ...geometryArgs(g),
        xp,
        xp + xpBytes,
      );
    });
  }

  /**
   * `y [batch, outHeight, outWidth, outChannels]` = the 3×3 stride-1 convolution of
   * `x [batch, inHeight, inWidth, inChannels]` with `filter [3, 3, inChannels, outChannels]`
   * (zero padding by `padTop`/`padLeft`), plus `bias [outChannels]` (byte offset, or 0 for none)
   * and ReLU if `relu`, by Winograd's F(4×4, 3×3) (Lavin & Gray, CVPR 2016; `wasm/winograd.c`):
   * 36 multiplies per 4×4 output tile and channel pair instead of 144. Scratch:
   * `4·36·(inC·outC + 24·(inC + outC)) + 576` bytes.
   *
   * @throws {RangeError} when {@link winogradFits} says no, or scratch cannot be allocated
   */
  winogradConv3x3(
    g: ConvGeometry,
    x: number,
    filter: number,
    bias: number,
    relu: boolean,
    y: number,
  ): void {
    if (!winogradFits(g, 'forward')) {
      throw new RangeError('winogradConv3x3 takes 3×3 stride-1 convs, inC % 4 = 0, outC % 8 = 0');
    }
    this.winograd(g, false, x, filter, y, bias, relu);
  }

  /**
   * `dx [batch, inHeight, inWidth, inChannels]`, the input gradient of the 3×3 stride-1
   * convolution of geometry `g` with `filter [3, 3, inChannels, outChannels]`, from
   * `dy [batch, outHeight, outWidth, outChannels]`: the convolution of dy with the filter rotated
   * by 180° and its channel axes swapped, padded by `2 − pad`, by Winograd's F(4×4, 3×3) as
   * {@link winogradConv3x3}.
   *
   * @throws {RangeError} when {@link winogradFits} says no, or scratch cannot be allocated
   */
  winogradInputGrad3x3(g: ConvGeometry, dy: number, filter: number, dx: number): void {
    if (!winogradFits(g, 'input-grad')) {
      throw new RangeError(
        'winogradInputGrad3x3 takes 3×3 stride-1 convs, outC % 4 = 0, inC % 8 = 0',
      );
    }
    this.winograd(g, true, dy, filter, dx);
  }

  /**
   * `dw [3, 3, inChannels, outChannels]`, the filter gradient of the 3×3 stride-1 convolution of
   * geometry `g` from `x [batch, inHeight, inWidth, inChannels]` and
   * `dy [batch, outHeight, outWidth, outChannels]`, by F(4×4, 3×3) run backwards:
   * `dW = Gᵀ [Σ_t (Bᵀ x_t B) ⊙ (A dy_t Aᵀ)] G` over the 4×4 output tiles t, the sum over tiles
   * 36 matrix products accumulated in float64. Scratch:
   * `4·36·24·(inC + outC) + 8·36·inC·outC + 576` bytes.
   *
   * @throws {RangeError} when {@link winogradFits} says no, or scratch cannot be allocated
   */
  winogradFilterGrad3x3(g: ConvGeometry, x: number, dy: number, dw: number): void {
    if (!winogradFits(g, 'forward')) {
      throw new RangeError(
        'winogradFilterGrad3x3 takes 3×3 stride-1 convs, inC % 4 = 0, outC % 8 = 0',
      );
    }
    const sBytes = 8 * 36 * g.inChannels * g.outChannels;
    const vBytes = 4 * 36 * WINOGRAD_BLOCK * g.inChannels;
    const zBytes = 4 * 36 * WINOGRAD_BLOCK * g.outChannels;
    this.withScratch(sBytes + vBytes + zBytes + 4 * 144, (s) => {
      this.exports.winograd_filter_grad3x3(
        x,
        dy,
        dw,
        g.batch,
        g.inHeight,
        g.inWidth,
        g.inChannels,
        g.outChannels,
        g.padTop,
        g.padLeft,
        g.outHeight,
        g.outWidth,
        s + sBytes,
        s + sBytes + vBytes,
        s,
        s + sBytes + vBytes + zBytes,
      );
    });
  }

  /**
   * The Winograd convolution of `input` into `output`: `g`'s forward convolution, or with `flip`
   * its input gradient (dy in, dx out: the rotated filter with its channel axes swapped, padding
   * `2 − pad`).
   */
  private winograd(
    g: ConvGeometry,
    flip: boolean,
    input: number,
    filter: number,
    output: number,
    bias = 0,
    relu = false,
  ): void {
    const [h, w, oh, ow, pt, pl] = flip
      ? [g.outHeight, g.outWidth, g.inHeight, g.inWidth, 2 - g.padTop, 2 - g.padLeft]
      : [g.inHeight, g.inWidth, g.outHeight, g.outWidth, g.padTop, g.padLeft];
    const [ci, co] = flip ? [g.outChannels, g.inChannels] : [g.inChannels, g.outChannels];
    const uBytes = 4 * 36 * ci * co;
    const vBytes = 4 * 36 * WINOGRAD_BLOCK * ci;
    const mBytes = 4 * 36 * WINOGRAD_BLOCK * co;
    this.withScratch(uBytes + vBytes + mBytes + 4 * 144, (u) => {
      this.exports.winograd_filter(filter, g.inChannels, g.outChannels, flip ? 1 : 0, u);
      this.exports.winograd_conv3x3(
        input,
        u,
        bias,
        relu ? 1 : 0,
        output,
        g.batch,
        h,
        w,
        ci,
        co,
        pt,
        pl,
        oh,
        ow,
        u + uBytes,
        u + uBytes + vBytes,
        u + uBytes + vBytes + mBytes,
      );
    });
  }

  /**
   * Channels per vector of the native build's wide kernels in use (`native/src/wide.c`: 16 under
   * AVX-512, 8 under AVX2), or 0 where none run (the wasm kernels, a CPU without AVX2, or the
   * addon's `setWide(false)`). Read afresh on every call.
   */
  wideLanes(): number {
    const active = this.native?.wideActive;
    return typeof active === 'function' ? (active as () => number)() : 0;
  }

  /**
   * Whether {@link pointwiseConv} and its gradients take this convolution: 1×1 at stride 1
   * without padding, both channel counts multiples of 16 (and of {@link wideLanes}), with the
   * wide native kernels running.
   */
  pointwiseFits(g: ConvGeometry): boolean {
    const lanes = this.wideLanes();
    return (
      lanes > 0 &&
      g.filterHeight === 1 &&
      g.filterWidth === 1 &&
      g.strideHeight === 1 &&
      g.strideWidth === 1 &&
      g.padTop === 0 &&
      g.padLeft === 0 &&
      g.outHeight === g.inHeight &&
      g.outWidth === g.inWidth &&
      g.inChannels % 16 === 0 &&
      g.outChannels % 16 === 0 &&
      g.inChannels % lanes === 0 &&
      g.outChannels % lanes === 0
    );
  }

  /**
   * `y [b, h, w, outC] = x [b, h, w, inC] · w [1, 1, inC, outC]` (+ `bias [outC]`, ReLU if
   * `relu`): a pointwise convolution as one product over the `b·h·w` pixels, in place, by the
   * native wide kernels (a 6×64 or 12×32 register tile of AVX-512 fused multiply-adds).
   *
   * @throws {RangeError} when {@link pointwiseFits} says no
   */
  pointwiseConv(
    g: ConvGeometry,
    x: number,
    filter: number,
    bias: number,
    relu: boolean,
    y: number,
  ): void {
    this.pointwise(
      'pointwise_conv',
      g,
      x,
      filter,
      bias,
      relu ? 1 : 0,
      y,
      g.inChannels,
      g.outChannels,
    );
  }

  /**
   * `dx [b, h, w, inC] = dy [b, h, w, outC] · wᵀ`, the input gradient of a pointwise convolution
   * (see {@link pointwiseConv}).
   *
   * @throws {RangeError} when {@link pointwiseFits} says no
   */
  pointwiseInputGrad(g: ConvGeometry, dy: number, filter: number, dx: number): void {
    this.pointwise('pointwise_input_grad', g, dy, filter, dx, g.inChannels, g.outChannels);
  }

  /**
   * `dw [1, 1, inC, outC] = xᵀ · dy` over the `b·h·w` pixels, the filter gradient of a pointwise
   * convolution: float32 sums over chunks of 256 pixels, float64 across them.
   *
   * @throws {RangeError} when {@link pointwiseFits} says no
   */
  pointwiseFilterGrad(g: ConvGeometry, x: number, dy: number, dw: number): void {
    this.pointwise('pointwise_filter_grad', g, x, dy, dw, g.inChannels, g.outChannels);
  }

  /**
   * Whether the native wide im2col products ({@link convGemm}, {@link convGemmFilterGrad},
   * {@link convGemmInputGrad}) take this convolution: the wide kernels running, and for the
   * forward pass and the filter gradient the output channels a multiple of {@link wideLanes}
   * (the input gradient takes any channels).
   */
  convGemmFits(g: ConvGeometry, kind: 'forward' | 'input-grad' | 'filter-grad'): boolean {
    const lanes = this.wideLanes();
    return (
      lanes > 0 &&
      typeof this.native?.conv_gemm === 'function' &&
      (kind === 'input-grad' || g.outChannels % lanes === 0)
    );
  }

  /**
   * `y [b, oh, ow, outC] = im2col(x) · w` (+ `bias [outC]`, ReLU if `relu`) for any filter,
   * stride and padding, by the native wide kernels over chunks of 96 output pixels gathered into
   * the thread's scratch (the im2col matrix never exists whole).
   *
   * @throws {RangeError} when {@link convGemmFits} says no
   */
  convGemm(
    g: ConvGeometry,
    x: number,
    filter: number,
    bias: number,
    relu: boolean,
    y: number,
  ): void {
    this.convGemmCall('conv_gemm', g, 'forward', x, filter, bias, relu ? 1 : 0, y);
  }

  /**
   * `dw [fh, fw, inC, outC] = im2col(x)ᵀ · dy`, float32 over chunks of 256 output pixels, float64
   * across them (see {@link convGemm}).
   *
   * @throws {RangeError} when {@link convGemmFits} says no
   */
  convGemmFilterGrad(g: ConvGeometry, x: number, dy: number, dw: number): void {
    this.convGemmCall('conv_gemm_filter_grad', g, 'filter-grad', x, dy, dw);
  }

  /**
   * `dx [b, h, w, inC] = col2im(dy · wᵀ)` (see {@link convGemm}).
   *
   * @throws {RangeError} when {@link convGemmFits} says no
   */
  convGemmInputGrad(g: ConvGeometry, dy: number, filter: number, dx: number): void {
    this.convGemmCall('conv_gemm_input_grad', g, 'input-grad', dy, filter, dx);
  }

  private convGemmCall(
    name: string,
    g: ConvGeometry,
    kind: 'forward' | 'input-grad' | 'filter-grad',
    ...args: number[]
  ): void {
    const fn = this.native?.[name];
    if (!this.convGemmFits(g, kind) || typeof fn !== 'function') {
      throw new RangeError(`${name} runs natively, with the wide kernels`);
    }
    const done = (fn as (heap: ArrayBuffer, ...a: number[]) => number)(
      this.memory.buffer,
      ...args,
      ...geometryArgs(g),
    );
    if (done !== 1) throw new RangeError(`${name} did not take these shapes`);
  }

  private pointwise(name: string, g: ConvGeometry, ...args: number[]): void {
    const fn = this.native?.[name];
    if (!this.pointwiseFits(g) || typeof fn !== 'function') {
      throw new RangeError(`${name} takes 1×1 stride-1 convs, channels multiples of 16, natively`);
    }
    const pixels = g.batch * g.inHeight * g.inWidth;
    // The pixel count goes after the operands' offsets, before the channel counts.
    const head = args.slice(0, -2);
    const done = (fn as (heap: ArrayBuffer, ...a: number[]) => number)(
      this.memory.buffer,
      ...head,
      pixels,
      ...args.slice(-2),
    );
    if (done !== 1) throw new RangeError(`${name} did not take these shapes`);
  }

  /**
   * Per channel over row-major `[rows, c]` float32 arrays, `Σ dy` and `Σ dy·(x − mean)` over the
   * rows (float32 products, float64 across blocks of 256 rows): {@link batchNormGrad}'s sums
   * without its `dx`. `mean` is a byte offset of `c` floats.
   */
  batchNormSums(
    dy: number,
    x: number,
    rows: number,
    c: number,
    mean: number,
  ): { sumDy: Float64Array; sumDyXm: Float64Array } {
    let sums = new Float64Array(0);
    this.withScratch(16 * c + 8 * c, (acc) => {
      this.exports.batch_norm_sums(dy, x, rows, c, mean, acc + 16 * c, acc);
      sums = new Float64Array(this.memory.buffer, acc, 2 * c).slice();
    });
    return { sumDy: sums.subarray(0, c), sumDyXm: sums.subarray(c) };
  }

  /**
   * `out[r·c + j] = dy[r·c + j]·a[j] + (x[r·c + j] − mean[j])·b[j] + k[j]` over row-major
   * `[rows, c]` float32 arrays: batch norm's input gradient in training once
   * {@link batchNormSums} has given the coefficients (`a`, `b`, `k`: `c` values each, copied to
   * scratch).
   */
  batchNormTrainDx(
    dy: number,
    x: number,
    rows: number,
    c: number,
    mean: number,
    [a, b, k]: readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>],
    out: number,
  ): void {
    this.withScratch(12 * c, (at) => {
      const abk = new Float32Array(this.memory.buffer, at, 3 * c);
      abk.set(a);
      abk.set(b, c);
      abk.set(k, 2 * c);
      this.exports.batch_norm_train_dx(dy, x, rows, c, mean, at, at + 4 * c, at + 8 * c, out);
    });
  }

  /**
   * Batch norm's gradient per channel over row-major `[rows, c]` float32 arrays in one pass:
   * writes `dx[r·c + j] = (dy·rs[j])·s[j]` (tfjs-core's order of the float32 products) and
   * returns, per channel, `Σ dy` and `Σ dy·(x − mean)` over the rows (float32 products, float64
   * across blocks of 256 rows). `mean` is a byte offset of `c` floats; `rs` (`1/√(variance + ε)`)
   * and `s` (the scale) are copied to scratch.
   */
  batchNormGrad(
    dy: number,
    x: number,
    rows: number,
    c: number,
    mean: number,
    [rs, s]: readonly [ArrayLike<number>, ArrayLike<number>],
    dx: number,
  ): { sumDy: Float64Array; sumDyXm: Float64Array } {
    let sums = new Float64Array(0);
    this.withScratch(16 * c + 16 * c, (acc) => {
      const floats = acc + 16 * c;
      const scratch = new Float32Array(this.memory.buffer, floats, 4 * c);
      scratch.set(rs);
      scratch.set(s, c);
      this.exports.batch_norm_grad(
        dy,
        x,
        rows,
        c,
        mean,
        floats,
        floats + 4 * c,
        dx,
        floats + 8 * c,
        acc,
      );
      sums = new Float64Array(this.memory.buffer, acc, 2 * c).slice();
    });
    return { sumDy: sums.subarray(0, c), sumDyXm: sums.subarray(c) };
  }

  /**
   * `y [batch, outHeight, outWidth, c]`, the depthwise convolution (channel multiplier 1) of
   * `x [batch, inHeight, inWidth, c]` with `filter [fh, fw, c, 1]`, any stride and zero padding
   * (`padTop`/`padLeft`), plus `bias [c]` (byte offset, or 0 for none) and ReLU if `relu`
   * (`depthwise.c`'s `depthwise_conv2d`: 16 channels per step, the taps inside the image found
   * once per pixel). `g.inChannels` is `c` and must be a multiple of 4; `g.outChannels` must
   * equal it.
   *
   * @throws {RangeError} when the channels are not a multiple of 4 or in and out differ
   */
  depthwiseConv2d(
    g: ConvGeometry,
    x: number,
    filter: number,
    bias: number,
    relu: boolean,
    y: number,
  ): void {
    this.exports.depthwise_conv2d(x, filter, bias, relu ? 1 : 0, y, ...depthwiseArgs(g));
  }

  /**
   * `dx [batch, inHeight, inWidth, c]` of {@link depthwiseConv2d} from `dy [batch, outHeight,
   * outWidth, c]` and the filter: a gather over the taps that reach each input pixel, so every
   * element of `dx` is written once (`depthwise_conv2d_input_grad`).
   *
   * @throws {RangeError} as {@link depthwiseConv2d}
   */
  depthwiseConv2dInputGrad(g: ConvGeometry, dy: number, filter: number, dx: number): void {
    this.exports.depthwise_conv2d_input_grad(dy, filter, dx, ...depthwiseArgs(g));
  }

  /**
   * `dw [fh, fw, c, 1]` of {@link depthwiseConv2d} from `x` and `dy`: float32 sums within an
   * image, float64 across images (`depthwise_conv2d_filter_grad`; `12·fh·fw·c` bytes of scratch).
   *
   * @throws {RangeError} as {@link depthwiseConv2d}, or when scratch cannot be allocated
   */
  depthwiseConv2dFilterGrad(g: ConvGeometry, x: number, dy: number, dw: number): void {
    const n = g.filterHeight * g.filterWidth * g.inChannels;
    const args = depthwiseArgs(g);
    this.withScratch(12 * n, (total) => {
      this.exports.depthwise_conv2d_filter_grad(x, dy, dw, ...args, total + 8 * n, total);
    });
  }

  /**
   * `out[i] = lo ≤ x[i] ≤ hi ? dy[i] : 0` over `n` floats: the gradient of `clipByValue` (ReLU6)
   * in one pass, bit for bit tfjs-core's `where(logicalAnd(x ≥ lo, x ≤ hi), dy, 0)` (`lo` and
   * `hi` rounded to float32 as its scalars are).
   */
  clipGrad(x: number, dy: number, n: number, lo: number, hi: number, out: number): void {
    this.exports.clip_grad(x, dy, n, Math.fround(lo), Math.fround(hi), out);
  }

  /**
   * `out[i] = dy[i]·step(x[i])` over `n` floats (`step(x) = x > 0 ? 1 : 0`, NaN for a NaN x):
   * ReLU's gradient, bit for bit tfjs-core's `mul(dy, step(x))`, in one pass.
   */
  reluGrad(x: number, dy: number, n: number, out: number): void {
    this.exports.relu_grad(x, dy, n, out);
  }

  /**
   * `out[i] = x[i] > hi ? 0 : dy[i]·step(x[i])` over `n` floats: the gradient of
   * `clipByValue(relu(x), 0, hi)` (ReLU6 at `hi` = 6), bit for bit tfjs-core's `ClipByValue`
   * gradient followed by `Relu`'s, in one pass (`hi` rounded to float32 as its scalar is).
   */
  reluClipGrad(x: number, dy: number, n: number, hi: number, out: number): void {
    this.exports.relu_clip_grad(x, dy, n, Math.fround(hi), out);
  }

  /** Whether all `n` floats at byte offset `x` are finite (no NaN, no ±Infinity). */
  allFinite(x: number, n: number): boolean {
    return this.exports.all_finite(x, n) !== 0;
  }

  /** The number of nonzero floats (NaN included) among the `n` at byte offset `x`. */
  countNonzero(x: number, n: number): number {
    return this.exports.count_nonzero(x, n);
  }

  /**
   * `dw [fh, fw, inC, outC]` of an NHWC convolution (any stride and padding, no dilation) as a
   * scatter over the nonzero entries of `dy` (see `conv2d_filter_grad_scatter`): work in
   * proportion to them, so it pays where ReLU and max pooling zero most of the gradient. Float32
   * sums within an image, float64 across images.
   */
  conv2dFilterGradScatter(g: ConvGeometry, x: number, dy: number, dw: number): void {
    const seg4 = Math.ceil((g.filterWidth * g.inChannels) / 4) * 4;
    const dwtBytes = 4 * g.outChannels * g.filterHeight * seg4;
    const accBytes = 8 * g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
    this.withScratch(dwtBytes + accBytes + 4 * g.outChannels, (dwt) => {
      this.exports.conv2d_filter_grad_scatter(
        x,
        dy,
        dw,
        ...geometryArgs(g),
        dwt,
        dwt + dwtBytes,
        dwt + dwtBytes + accBytes,
      );
    });
  }

  /**
   * One Adam step over `n` float32 parameters (see `adam_update`): reads `p`, `m`, `v`, `g` and
   * writes the new parameters, first moment and second moment to `outP`, `outM`, `outV` (`n`
   * floats each, none aliasing an input). Scalars as `adam-update.ts`'s kernel attributes.
   */
  adamUpdate(
    n: number,
    [p, m, v, g]: readonly [number, number, number, number],
    s: AdamScalars,
    [outP, outM, outV]: readonly [number, number, number],
  ): void {
    this.exports.adam_update(
      p,
      m,
      v,
      g,
      n,
      s.beta1,
      s.oneMinusBeta1,
      s.beta2,
      s.oneMinusBeta2,
      s.correction1,
      s.correction2,
      s.epsilon,
      s.negLearningRate,
      outP,
      outM,
      outV,
    );
  }

  /** Runs `body` with `bytes` of scratch from the backend's allocator (8-byte aligned). */
  private withScratch(bytes: number, body: (at: number) => void): void {
    const at = this.malloc(bytes);
    if (at === 0) {
      throw new RangeError(`wasm heap: could not allocate ${bytes} bytes of scratch`);
    }
    try {
      body(at);
    } finally {
      this.free(at);
    }
  }

  /**
   * `out[r·c + j] = a[r·c + j] op v[j]` (or `v[j] op a[r·c + j]` when `vFirst`): a binary op with
   * `v` (`c` floats) broadcast along every axis but the last; element by element in IEEE single
   * precision, so bit for bit what the backend's own kernels give.
   */
  broadcastRows(
    op: BroadcastOp,
    a: number,
    rows: number,
    c: number,
    v: number,
    out: number,
    vFirst: boolean,
  ): void {
    this.exports.broadcast_rows(BROADCAST_OPS[op], a, rows, c, v, out, vFirst ? 1 : 0);
  }
}

/**
 * The geometry arguments of `depthwise.c`'s kernels (`batch, h, w, c, fh, fw, sh, sw, pt, pl, oh,
 * ow`).
 *
 * @throws {RangeError} when the channels are not a multiple of 4 or in and out differ
 */
function depthwiseArgs(g: ConvGeometry): number[] {
  if (g.inChannels % 4 !== 0 || g.outChannels !== g.inChannels) {
    throw new RangeError(
      `the depthwise kernels take a multiple of 4 channels, multiplier 1 (got ${g.inChannels} into ${g.outChannels})`,
    );
  }
  // geometryArgs without the output channels (the same as the input ones).
  const args = geometryArgs(g);
  args.splice(6, 1);
  return args;
}

/**
 * Scratch of the one-channel filter gradient: a zero-padded image of `oh + fh − 1` rows of
 * `wpp` floats (`wpp` = the output width rounded up to 4, plus `fw − 1`, rounded up to 4), and the
 * rounded output width `owp`.
 *
 * @throws {RangeError} when `g` has more than one input channel or a stride other than 1
 */
function oneChannelScratch(g: ConvGeometry): { xpBytes: number; owp: number } {
  if (g.inChannels !== 1 || g.strideHeight !== 1 || g.strideWidth !== 1) {
    throw new RangeError('the one-channel conv kernels take one input channel at stride 1');
  }
  return { xpBytes: paddedImageBytes(g), owp: Math.ceil(g.outWidth / 4) * 4 };
}

/**
 * Bytes of one image zero-padded for the direct kernels (`heap-kernels.c`'s `pad_image`):
 * `outHeight + filterHeight − 1` rows of `padded_width(outWidth, filterWidth)` pixels (the output
 * width rounded up to 4, plus the filter's overhang, rounded up to 4), `inChannels` floats each.
 */
function paddedImageBytes(g: ConvGeometry): number {
  const wpp = Math.ceil((Math.ceil(g.outWidth / 4) * 4 + g.filterWidth - 1) / 4) * 4;
  return 4 * (g.outHeight + g.filterHeight - 1) * wpp * g.inChannels;
}

/** The parts of tfjs-backend-wasm's Emscripten module past {@link WasmBackendLike}'s. */
interface WasmModuleWithMemory {
  readonly asm?: { readonly memory?: unknown };
  readonly _malloc?: (bytes: number) => number;
  readonly _free?: (at: number) => void;
}

let bytes: Uint8Array | undefined;
let modules = new WeakMap<object, HeapKernels | null>();
let nativeAllowed = true;

/**
 * Whether {@link heapKernels} may use the native build where it loads (default true); false runs
 * the WebAssembly kernels. For tests and benchmarks that compare the two in one process: the
 * kernels of every backend are rebuilt on next use.
 */
export function allowNativeKernels(allowed: boolean): void {
  nativeAllowed = allowed;
  modules = new WeakMap();
}

/**
 * The in-place kernels for this wasm backend (one instance per backend, compiled on first use
 * from the committed `heap-kernels.wasm`; run by the native addon instead where it was built,
 * see `native-kernels.ts`), or undefined when the backend's memory is not
 * reachable (another tfjs-backend-wasm build), in which case callers use the backend's kernels.
 */
export function heapKernels(backend: WasmBackendLike): HeapKernels | undefined {
  let kernels = modules.get(backend);
  if (kernels === undefined) {
    const module = backend.wasm as WasmModuleWithMemory;
    const memory = module.asm?.memory;
    const { _malloc: malloc, _free: free } = module;
    const isMemory =
      memory instanceof
      (globalThis as unknown as { WebAssembly: { Memory: new () => object } }).WebAssembly.Memory;
    bytes ??= readFileSync(new URL('./heap-kernels.wasm', import.meta.url));
    kernels = null;
    if (isMemory && malloc !== undefined && free !== undefined) {
      try {
        kernels = new HeapKernels(
          bytes,
          memory as { readonly buffer: ArrayBuffer },
          malloc,
          free,
          nativeAllowed ? nativeKernels() : undefined,
        );
      } catch {
        // A memory this module cannot import (a shared one, in a threaded build): the callers
        // fall back to the backend's kernels.
      }
    }
    modules.set(backend, kernels);
  }
  return kernels ?? undefined;
}
