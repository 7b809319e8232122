import * as tf from '@tensorflow/tfjs';
import { wasmGemm } from './wasm-gemm.ts';
import { float32OnWasm, heapFloats, type WasmBackendLike } from './wasm-heap.ts';

/** Products below this many multiply-adds stay with the backend's kernel (call and copy overhead). */
export const MIN_GEMM_MACS = 1 << 15;

/** Untransposed products from this many multiply-adds on go to the GEMM (AlexNet's 4096² layers). */
export const LARGE_GEMM_MACS = 1 << 24;

/**
 * Whether the GEMM beats the kernel it wraps (XNNPACK behind `batch-mat-mul.ts`'s explicit
 * transposes), from bench/kernels.ts by CPU time on one core: `transposeB` products 1.2–2.2×
 * faster (a dense layer's input gradient `dy·Wᵀ`, where transposing W costs a full pass);
 * untransposed ones only when large (AlexNet's 128×4096·4096×4096: 1.15×; a 128×256·256×120
 * dense layer: 0.8×); `transposeA` alone never (0.85–0.99×).
 */
export function gemmWins(macs: number, transposeA: boolean, transposeB: boolean): boolean {
  if (macs < MIN_GEMM_MACS) {
    return false;
  }
  return transposeB || (!transposeA && macs >= LARGE_GEMM_MACS);
}

/** A matrix product the GEMM handles: `[batch, m, k] · [batch, k, n]` up to transposes. */
interface Plan {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batch: number;
  readonly batchA: number;
  readonly batchB: number;
  readonly outShape: number[];
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

function plan(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): Plan | undefined {
  if (a.shape.length < 2 || b.shape.length < 2) {
    return undefined;
  }
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = a.shape[transposeA ? ra - 1 : ra - 2]!;
  const k = a.shape[transposeA ? ra - 2 : ra - 1]!;
  const kb = b.shape[transposeB ? rb - 1 : rb - 2]!;
  const n = b.shape[transposeB ? rb - 2 : rb - 1]!;
  if (k !== kb) {
    return undefined; // the backend's kernel throws its own message
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = outerA.reduce((p, d) => p * d, 1);
  const batchB = outerB.reduce((p, d) => p * d, 1);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined;
  }
  const batch = outer.reduce((p, d) => p * d, 1);
  // Only "same batch" or "one side shared by all"; other broadcasts go to the backend.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) {
    return undefined;
  }
  if (!gemmWins(batch * m * n * k, transposeA, transposeB)) {
    return undefined;
  }
  return { m, n, k, batch, batchA, batchB, outShape: [...outer, m, n], transposeA, transposeB };
}

/** Bias of a fused product the GEMM can add: absent, or `n` values along the last axis. */
function biasFits(bias: tf.TensorInfo | undefined, n: number): boolean {
  if (bias === undefined) {
    return true;
  }
  const size = bias.shape.reduce((p, d) => p * d, 1);
  return bias.dtype === 'float32' && size === n && (bias.shape.at(-1) ?? 1) === n;
}

/**
 * Runs the product on the GEMM module: copies the operands (and bias) in, multiplies each batch
 * entry, applies bias and ReLU, copies the result into a new wasm-backend tensor.
 */
function run(
  backend: WasmBackendLike,
  p: Plan,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  bias: tf.TensorInfo | undefined,
  relu: boolean,
): tf.TensorInfo {
  const g = wasmGemm();
  const { m, n, k, batch } = p;
  const sizeA = p.batchA * m * k;
  const sizeB = p.batchB * k * n;
  const sizeC = batch * m * n;
  const [offA = 0, offB = 0, offC = 0, offBias = 0] = g.reserve([
    sizeA,
    sizeB,
    sizeC,
    bias === undefined ? 0 : n,
  ]);
  g.view(offA, sizeA).set(heapFloats(backend, a));
  g.view(offB, sizeB).set(heapFloats(backend, b));
  if (bias !== undefined) {
    g.view(offBias, n).set(heapFloats(backend, bias));
  }
  const stridesA: [number, number] = p.transposeA ? [1, m] : [k, 1];
  const stridesB: [number, number] = p.transposeB ? [1, k] : [n, 1];
  for (let t = 0; t < batch; t++) {
    const c = offC + 4 * t * m * n;
    if (bias !== undefined) {
      g.fillRows(c, m, n, offBias);
    }
    const at = offA + 4 * (p.batchA === 1 ? 0 : t) * m * k;
    const bt = offB + 4 * (p.batchB === 1 ? 0 : t) * k * n;
    g.gemm(m, n, k, at, stridesA, bt, stridesB, c, bias !== undefined);
  }
  if (relu) {
    g.relu(offC, sizeC);
  }
  const out = backend.makeOutput(p.outShape, 'float32');
  heapFloats(backend, out).set(g.view(offC, sizeC));
  return out;
}

/**
 * `BatchMatMul` on the wasm backend through the WebAssembly SIMD GEMM of `wasm/gemm.c`, every
 * transpose form alike: 24–28 GFLOP/s where tfjs-backend-wasm 4.22 gives 0.2–6.6 (its
 * `transposeA` form 0.6, a 4096×128·128×4096 product 0.2). Small products and unusual broadcasts
 * go to `original`.
 *
 * Inputs `{a: [...batch, m, k] (or [..., k, m] when transposeA), b: [...batch, k, n] (or
 * [..., n, k] when transposeB)}`, float32; output `[...batch, m, n]`. Results equal the cpu
 * backend's up to float32 summation order (tests bound the relative error by 1e-5).
 *
 * @param original the kernel registered before (used for what the GEMM does not take).
 */
export function createFastBatchMatMulKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const fast = float32OnWasm(args, ['a', 'b']);
    if (fast === undefined) {
      return original.kernelFunc(args);
    }
    const { a, b } = fast.inputs;
    const attrs = args.attrs ?? {};
    const p = plan(a, b, attrs.transposeA === true, attrs.transposeB === true);
    return p === undefined
      ? original.kernelFunc(args)
      : run(fast.backend, p, a, b, undefined, false);
  };
}

/**
 * `_FusedMatMul` (what Dense layers call: product, bias, activation) on the GEMM when the bias is
 * absent or per column and the activation is linear or ReLU; otherwise `original`.
 *
 * Also a correctness fix: tfjs-backend-wasm 4.22's kernel adds the bias wrongly when
 * `transposeB` is set (off by up to 1.75 on a 5×7·7×29 product, any activation; tested in
 * fast-kernels.test.ts), so such products it still gets receive an explicitly transposed `b`.
 *
 * Inputs `{a, b, bias?, preluActivationWeights?}` as for {@link createFastBatchMatMulKernel}.
 */
export function createFastFusedMatMulKernel(original: tf.KernelConfig): tf.KernelFunc {
  const fallback: tf.KernelFunc = (args) => {
    const { b, bias } = args.inputs;
    const attrs = args.attrs ?? {};
    if (attrs.transposeB !== true || bias === undefined || b === undefined) {
      return original.kernelFunc(args);
    }
    const bT = swapLastAxes(b);
    try {
      return original.kernelFunc({
        ...args,
        inputs: { ...args.inputs, b: bT },
        attrs: { ...attrs, transposeB: false },
      });
    } finally {
      bT.dispose();
    }
  };
  return (args) => {
    const fast = float32OnWasm(args, ['a', 'b']);
    const { bias, preluActivationWeights } = args.inputs;
    const attrs = args.attrs ?? {};
    const activation = attrs.activation ?? 'linear';
    if (
      fast === undefined ||
      preluActivationWeights !== undefined ||
      (activation !== 'linear' && activation !== 'relu')
    ) {
      return fallback(args);
    }
    const { a, b } = fast.inputs;
    const p = plan(a, b, attrs.transposeA === true, attrs.transposeB === true);
    if (p === undefined || !biasFits(bias, p.n)) {
      return fallback(args);
    }
    return run(fast.backend, p, a, b, bias, activation === 'relu');
  };
}

/** `[..., n, k] → [..., k, n]` through the engine (the backend's fast Transpose). */
function swapLastAxes(info: tf.TensorInfo): tf.Tensor {
  if ((info as Partial<tf.Tensor>).rank == null) {
    throw new TypeError(`${tf._FusedMatMul}: inputs must be tf.Tensors, got a TensorInfo.`);
  }
  const rank = info.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return tf.transpose(info as tf.Tensor, perm);
}
