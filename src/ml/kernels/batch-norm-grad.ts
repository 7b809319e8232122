import * as tf from '@tensorflow/tfjs';
import { heapKernels, type HeapKernels } from './heap-kernels.ts';
import { heapFloats, heapOffset, isWasmBackend, type WasmBackendLike } from './wasm-heap.ts';

/** The wasm kernel computing all five of batch norm's gradients in one pass. */
export const BATCH_NORM_GRAD = 'CnnClassroomBatchNormGrad';

/** The fewest channels the one-pass kernel takes (its SIMD lanes hold 4). */
const MIN_CHANNELS = 4;

/** The operands of a batch-norm gradient kernel on wasm, checked, with `r` and the scale. */
export interface BatchNormGradInputs {
  readonly dy: tf.TensorInfo;
  readonly x: tf.TensorInfo;
  readonly mean: tf.TensorInfo;
  readonly backend: WasmBackendLike;
  readonly kernels: HeapKernels;
  /** Channels (x's last axis) and rows (the product of the others). */
  readonly c: number;
  readonly rows: number;
  /** `1/√(variance + ε)` per channel as tfjs-core forms it in float32. */
  readonly r: Float32Array;
  /** The scale, copied off the heap. */
  readonly s: Float32Array;
}

/**
 * Checks the inputs `{dy, x, mean, variance, scale}` and attr `varianceEpsilon` (default 0.001)
 * of a batch-norm gradient kernel named `name` on wasm and forms `r` as tfjs-core does:
 * `rsqrt(add(variance, scalar(ε)))` in float32 (float64 square root and division rounded to
 * float32 equal their float32 versions, Figueroa 1995).
 *
 * @throws {TypeError} when an input is missing
 * @throws {Error} on another backend, or when its memory is not reachable
 */
export function batchNormGradInputs(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
  name: string,
): BatchNormGradInputs {
  const { dy, x, mean, variance, scale } = args.inputs;
  const backend = args.backend;
  if (
    dy === undefined ||
    x === undefined ||
    mean === undefined ||
    variance === undefined ||
    scale === undefined
  ) {
    throw new TypeError(`${name}: dy, x, mean, variance and scale are required`);
  }
  if (!isWasmBackend(backend)) {
    throw new Error(`${name}: not a wasm backend`);
  }
  const kernels = heapKernels(backend);
  if (kernels === undefined) {
    throw new Error(`${name}: the wasm backend's memory is not reachable`);
  }
  const c = x.shape.at(-1) ?? 0;
  const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const f = Math.fround;
  const epsilon = f(Number(args.attrs?.varianceEpsilon ?? 0.001));
  const r = Float32Array.from(heapFloats(backend, variance), (vj) =>
    f(1 / f(Math.sqrt(f(vj + epsilon)))),
  );
  return { dy, x, mean, backend, kernels, c, rows, r, s: heapFloats(backend, scale).slice() };
}

/**
 * `CnnClassroomBatchNormGrad` on wasm: inputs `{dy, x: [..., C], mean: [C], variance: [C],
 * scale: [C]}`, attr `varianceEpsilon`; outputs `[dx, dMean, dVariance, dScale, dOffset]` of
 * `FusedBatchNorm` (`y = (x − mean)·scale/√(variance + ε) + offset`) as tfjs-core 4.22's gradient
 * gives them: with `r = 1/√(variance + ε)` in float32 and `s` the scale,
 * `dx = (dy·r)·s` bit for bit, `dMean = −r·s·Σdy`, `dVariance = −½r³·s·Σdy(x − mean)`,
 * `dScale = r·Σdy(x − mean)`, `dOffset = Σdy`, sums over every axis but the last, in one pass of
 * `heap-kernels.c`'s `batch_norm_grad` (float64 across blocks, so more accurate than the
 * float32 sums of tfjs-core's fourteen full-size operations).
 */
function batchNormGradWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { dy, x, mean, backend, kernels, c, rows, r, s } = batchNormGradInputs(
    args,
    BATCH_NORM_GRAD,
  );
  const dx = backend.makeOutput([...x.shape], 'float32');
  const { sumDy, sumDyXm } = kernels.batchNormGrad(
    heapOffset(backend, dy),
    heapOffset(backend, x),
    rows,
    c,
    heapOffset(backend, mean),
    [r, s],
    heapOffset(backend, dx),
  );
  const perChannel = (value: (j: number) => number): tf.TensorInfo => {
    const out = backend.makeOutput([c], 'float32');
    heapFloats(backend, out).set(Float32Array.from({ length: c }, (_, j) => value(j)));
    return out;
  };
  const rj = (j: number) => r[j] as number;
  const sj = (j: number) => s[j] as number;
  return [
    dx,
    perChannel((j) => -rj(j) * sj(j) * (sumDy[j] as number)),
    perChannel((j) => -0.5 * rj(j) ** 3 * sj(j) * (sumDyXm[j] as number)),
    perChannel((j) => rj(j) * (sumDyXm[j] as number)),
    perChannel((j) => sumDy[j] as number),
  ];
}

/** Whether the one-pass kernel takes this gradient (else tfjs-core's runs). */
function takesOnePass(dy: tf.Tensor, saved: tf.Tensor[]): boolean {
  const [x, mean, variance, scale] = saved;
  const c = x?.shape.at(-1);
  const backend = tf.backend();
  return (
    x !== undefined &&
    mean !== undefined &&
    variance !== undefined &&
    c !== undefined &&
    c >= MIN_CHANNELS &&
    x.rank >= 2 &&
    scale !== undefined &&
    [dy, x, mean, variance, scale].every((t) => t.dtype === 'float32') &&
    tf.util.arraysEqual(dy.shape, x.shape) &&
    [mean, variance, scale].every((t) => t.rank === 1 && t.shape[0] === c) &&
    isWasmBackend(backend) &&
    tf.getKernel(BATCH_NORM_GRAD, 'wasm') !== undefined &&
    heapKernels(backend) !== undefined
  );
}

let original: tf.GradConfig | undefined;

/**
 * `FusedBatchNorm`'s gradient in one pass on wasm (per-channel statistics, float32, ≥ 4
 * channels): tfjs-core's runs fourteen full-size elementwise operations and sums; a ResNet-20
 * training step has 21 of them. Elsewhere (other backends, shapes or dtypes, and second-order
 * gradients, which differentiate this one) tfjs-core's own gradient runs. Installs the kernel and the gradient; idempotent.
 */
export function registerBatchNormGradient(): void {
  if (original !== undefined) {
    return;
  }
  const core = tf.getGradient(tf.FusedBatchNorm);
  if (core === undefined) {
    return;
  }
  original = core;
  if (tf.getKernel(BATCH_NORM_GRAD, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: BATCH_NORM_GRAD,
      backendName: 'wasm',
      kernelFunc: batchNormGradWasm,
    });
  }
  tf.registerGradient({
    kernelName: tf.FusedBatchNorm,
    inputsToSave: core.inputsToSave ?? ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      // Under a recording tape (a gradient of this gradient) tfjs-core's differentiable ops run:
      // the one-pass kernel has no gradient of its own.
      if (Array.isArray(dy) || tf.engine().isTapeOn() || !takesOnePass(dy, saved)) {
        return core.gradFunc(dy, saved, attrs);
      }
      const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const [dx, dMean, dVariance, dScale, dOffset] = tf
        .engine()
        .runKernel<tf.Tensor[]>(
          BATCH_NORM_GRAD,
          { dy, x, mean, variance, scale },
          { varianceEpsilon: attrs.varianceEpsilon as number },
        );
      return {
        x: () => dx!,
        mean: () => dMean!,
        variance: () => dVariance!,
        scale: () => dScale!,
        offset: () => dOffset!,
      };
    },
  });
}

/** Puts back tfjs-core's gradient (tests and benchmarks); the kernel stays registered. */
export function unregisterBatchNormGradient(): void {
  if (original !== undefined) {
    tf.registerGradient(original);
    original = undefined;
  }
}
