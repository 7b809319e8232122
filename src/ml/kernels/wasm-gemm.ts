import { readFileSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs';

// tsconfig's libs (ES2023, no DOM) and @types/node 20 leave WebAssembly's JS API undeclared.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The C functions of `wasm/gemm.c`; pointers are byte offsets into the module's own memory. */
interface GemmExports {
  readonly memory: WasmMemory;
  readonly __heap_base: { readonly value: number };
  gemm_pack_a_floats(): number;
  gemm_pack_b_floats(): number;
  gemm(
    m: number,
    n: number,
    k: number,
    a: number,
    rsA: number,
    csA: number,
    b: number,
    rsB: number,
    csB: number,
    c: number,
    ldc: number,
    accumulate: number,
    packA: number,
    packB: number,
  ): void;
  conv2d_filter_grad(...args: number[]): void;
  conv2d_input_grad(...args: number[]): void;
  fill_rows(c: number, m: number, n: number, bias: number): void;
  relu_inplace(x: number, count: number): void;
}

/** Geometry of an NHWC convolution without dilation, as the conv-gradient entry points take it. */
export interface ConvGeometry {
  readonly batch: number;
  readonly inHeight: number;
  readonly inWidth: number;
  readonly inChannels: number;
  readonly filterHeight: number;
  readonly filterWidth: number;
  readonly outChannels: number;
  readonly strideHeight: number;
  readonly strideWidth: number;
  readonly padTop: number;
  readonly padLeft: number;
  readonly outHeight: number;
  readonly outWidth: number;
}

/** The {@link ConvGeometry} of tfjs-core's conv or pool info (dilation 1, NHWC). */
export function convGeometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    outChannels: info.outChannels,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
  };
}

/** Output pixels per im2col chunk: 512 rows of a 3×3×64 conv are 1.2 MB, an L2's worth. */
const CHUNK_BYTES = 1 << 20;
const PAGE = 65536;
const ALIGN = 64;

/**
 * A single-precision GEMM compiled from `wasm/gemm.c` to WebAssembly SIMD (24–28 GFLOP/s on one
 * x86-64 core against 0.2–6.6 for tfjs-backend-wasm 4.22's `BatchMatMul`; see
 * docs/engine-speed.md), with its own linear memory. Operands are copied in, because a
 * WebAssembly module cannot read another's memory; the copies are O(n²) against the product's
 * O(n³).
 *
 * Synchronous by design: TF.js kernels are synchronous, so the module is compiled with
 * `new WebAssembly.Module` on first use (Node has no size limit on synchronous compilation).
 */
export class WasmGemm {
  private readonly exports: GemmExports;
  private readonly scratchBase: number;
  private readonly packA: number;
  private readonly packB: number;
  private f32: Float32Array;

  constructor(bytes: Uint8Array) {
    const instance = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(bytes), {});
    this.exports = instance.exports as unknown as GemmExports;
    const heapBase = align(this.exports.__heap_base.value);
    this.packA = heapBase;
    this.packB = align(this.packA + 4 * this.exports.gemm_pack_a_floats());
    this.scratchBase = align(this.packB + 4 * this.exports.gemm_pack_b_floats());
    this.f32 = new Float32Array(this.exports.memory.buffer);
    this.reserve([]);
  }

  /**
   * Lays out buffers of the given float counts after the fixed scratch, growing memory as needed,
   * and returns their byte offsets. Earlier offsets are invalid after the next call.
   */
  reserve(floatCounts: readonly number[]): number[] {
    let end = this.scratchBase;
    const offsets = floatCounts.map((count) => {
      const at = end;
      end = align(end + 4 * count);
      return at;
    });
    const memory = this.exports.memory;
    if (end > memory.buffer.byteLength) {
      memory.grow(Math.ceil((end - memory.buffer.byteLength) / PAGE));
    }
    if (this.f32.buffer !== memory.buffer) {
      this.f32 = new Float32Array(memory.buffer);
    }
    return offsets;
  }

  /** A view of `count` floats at byte offset `at` (valid until the next {@link reserve}). */
  view(at: number, count: number): Float32Array {
    return this.f32.subarray(at / 4, at / 4 + count);
  }

  /**
   * `C[i·ldc + j] (+)= Σ_p A(i, p)·B(p, j)` with `A(i, p) = mem[a + 4(i·rsA + p·csA)]` and
   * `B(p, j) = mem[b + 4(p·rsB + j·csB)]`; offsets from {@link reserve}.
   */
  gemm(
    m: number,
    n: number,
    k: number,
    a: number,
    [rsA, csA]: readonly [number, number],
    b: number,
    [rsB, csB]: readonly [number, number],
    c: number,
    accumulate: boolean,
  ): void {
    this.exports.gemm(
      m,
      n,
      k,
      a,
      rsA,
      csA,
      b,
      rsB,
      csB,
      c,
      n,
      accumulate ? 1 : 0,
      this.packA,
      this.packB,
    );
  }

  /** Fills each of `m` rows of `n` floats at `c` with the `n` floats at `bias`. */
  fillRows(c: number, m: number, n: number, bias: number): void {
    this.exports.fill_rows(c, m, n, bias);
  }

  /** `max(x, 0)` in place over `count` floats at `x` (NaN stays NaN). */
  relu(x: number, count: number): void {
    this.exports.relu_inplace(x, count);
  }

  /**
   * Floats of scratch {@link conv2dFilterGrad} and {@link conv2dInputGrad} need: an im2col chunk,
   * then room for a transposed filter gradient.
   */
  static colFloats(g: ConvGeometry): number {
    const kcols = g.filterHeight * g.filterWidth * g.inChannels;
    return chunkRows(g) * kcols + align(4 * kcols * g.outChannels) / 4;
  }

  /** `dw [fh, fw, inC, outC] = im2col(x)ᵀ · dy`; `col` from {@link colFloats}. */
  conv2dFilterGrad(g: ConvGeometry, x: number, dy: number, dw: number, col: number): void {
    const dwt = col + 4 * chunkRows(g) * g.filterHeight * g.filterWidth * g.inChannels;
    this.exports.conv2d_filter_grad(
      x,
      dy,
      dw,
      ...geometryArgs(g),
      col,
      chunkRows(g),
      this.packA,
      this.packB,
      dwt,
    );
  }

  /** `dx [batch, h, w, inC] = col2im(dy · Wᵀ)`; `col` from {@link colFloats}. */
  conv2dInputGrad(g: ConvGeometry, dy: number, filter: number, dx: number, col: number): void {
    this.exports.conv2d_input_grad(
      dy,
      filter,
      dx,
      ...geometryArgs(g),
      col,
      chunkRows(g),
      this.packA,
      this.packB,
    );
  }
}

/**
 * A geometry as the conv and pool entry points of `wasm/gemm.c` and `wasm/heap-kernels.c` take
 * it: batch, h, w, inC, fh, fw, outC, strides, top/left padding, oh, ow.
 */
export function geometryArgs(g: ConvGeometry): number[] {
  return [
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.filterHeight,
    g.filterWidth,
    g.outChannels,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.outHeight,
    g.outWidth,
  ];
}

function chunkRows(g: ConvGeometry): number {
  const rowBytes = 4 * g.filterHeight * g.filterWidth * g.inChannels;
  // A multiple of the GEMM's 256-deep k-blocks, so every chunk but the last fills them.
  return Math.max(256, Math.floor(CHUNK_BYTES / rowBytes / 256) * 256);
}

function align(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

let shared: WasmGemm | undefined;

/** This thread's GEMM module, compiled from the committed `gemm.wasm` on first use. */
export function wasmGemm(): WasmGemm {
  shared ??= new WasmGemm(readFileSync(new URL('./gemm.wasm', import.meta.url)));
  return shared;
}
