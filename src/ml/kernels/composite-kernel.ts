import * as tf from '@tensorflow/tfjs';

/** A pair `[height, width]`, as the conv kernels' attributes hold strides and dilations. */
export type Pair = [number, number];

/** A rank-4 shape, e.g. `[batch, height, width, channels]` or `[fh, fw, inC, outC]`. */
export type Shape4 = [number, number, number, number];

/** The padding forms a TF.js conv attribute may carry. */
export type ConvPad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** How a conv's output size is rounded when `pad` is a number. */
export type DimRoundingMode = 'floor' | 'round' | 'ceil';

/**
 * Turns a TF.js kernel implemented with ordinary ops into a {@link tf.KernelFunc}.
 *
 * The ops run through the engine on the active backend (the one the kernel was invoked for), inside
 * a `tf.tidy` so every intermediate tensor is released; the result is returned as a `tf.Tensor`,
 * which the engine hands back to the caller as-is (the same path tfjs-node's kernels take). Ops
 * run while a kernel executes are never recorded on the gradient tape (the engine's kernel depth is
 * above zero), so the composition costs no extra memory during `tf.grads`.
 *
 * @param kernelName used in error messages only.
 * @param inputNames the kernel's input names, in the order `compute` receives them.
 * @param compute builds the output from the inputs (as tensors) and the raw attributes.
 */
export function compositeKernel(
  kernelName: string,
  inputNames: readonly string[],
  compute: (inputs: tf.Tensor[], attrs: tf.NamedAttrMap) => tf.Tensor,
): tf.KernelFunc {
  return ({ inputs, attrs }) => {
    const tensors = inputNames.map((name) => {
      const info = inputs[name];
      if (info === undefined) {
        throw new Error(`${kernelName}: missing input '${name}'.`);
      }
      if (!isTensor(info)) {
        // Ops always invoke kernels with engine-tracked tensors; a bare TensorInfo (a backend
        // calling the kernel function directly) has no reference count we could safely borrow.
        throw new TypeError(
          `${kernelName}: input '${name}' must be a tf.Tensor, got a TensorInfo.`,
        );
      }
      return info;
    });
    return tf.tidy(() => compute(tensors, attrs ?? {}));
  };
}

function isTensor(info: tf.TensorInfo): info is tf.Tensor {
  // The engine tells tensors from bare TensorInfos the same way (TensorInfo has no rank).
  return (info as Partial<tf.Tensor>).rank != null;
}

/** Normalizes a `number | [h, w]` attribute (strides, dilations) to `[h, w]`; absent means 1. */
export function toPair(value: unknown, what: string, kernelName: string): Pair {
  if (value == null) {
    return [1, 1];
  }
  if (typeof value === 'number') {
    return [value, value];
  }
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'number' &&
    typeof value[1] === 'number'
  ) {
    return [value[0], value[1]];
  }
  throw new Error(
    `${kernelName}: ${what} must be a number or [height, width], got ${JSON.stringify(value)}.`,
  );
}

/** Reads a 4-element shape attribute (`filterShape`, `inputShape`). */
export function toShape4(value: unknown, what: string, kernelName: string): Shape4 {
  if (Array.isArray(value) && value.length === 4 && value.every((v) => Number.isInteger(v))) {
    return value as Shape4;
  }
  throw new Error(`${kernelName}: ${what} must be a rank-4 shape, got ${JSON.stringify(value)}.`);
}

/** Reads the `pad` attribute, rejecting anything TF.js conv ops would not accept. */
export function toPad(value: unknown, kernelName: string): ConvPad {
  if (value === 'valid' || value === 'same' || typeof value === 'number') {
    return value;
  }
  if (Array.isArray(value) && value.length === 4) {
    return value as tf.backend_util.ExplicitPadding;
  }
  throw new Error(`${kernelName}: unsupported pad ${JSON.stringify(value)}.`);
}

/** Reads the optional `dimRoundingMode` attribute. */
export function toRounding(value: unknown, kernelName: string): DimRoundingMode | undefined {
  if (value == null) {
    return undefined;
  }
  if (value === 'floor' || value === 'round' || value === 'ceil') {
    return value;
  }
  throw new Error(`${kernelName}: unsupported dimRoundingMode ${JSON.stringify(value)}.`);
}

/** Throws unless the data format is NHWC (channels last), the only layout these kernels handle. */
export function assertNhwc(dataFormat: unknown, kernelName: string): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(
      `${kernelName}: dataFormat ${JSON.stringify(dataFormat)} is not supported on this backend; use 'NHWC'.`,
    );
  }
}

/** Throws when a tensor does not have the shape the conv geometry implies. */
export function assertShape(
  actual: readonly number[],
  expected: readonly number[],
  what: string,
  kernelName: string,
): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new Error(
      `${kernelName}: ${what} has shape [${actual.join(', ')}], expected [${expected.join(', ')}].`,
    );
  }
}

/**
 * Crops (negative amounts) then describes the zero padding (positive amounts) of the two spatial
 * axes of an NHWC tensor, so a forward conv with explicit padding can take the rest.
 *
 * @param x `[batch, height, width, channels]`.
 * @param before `[top, left]` rows/columns to add (or remove when negative) before the data.
 * @param after `[bottom, right]` rows/columns to add (or remove when negative) after the data.
 * @returns the cropped tensor and the explicit padding still to apply.
 */
export function cropForPadding(
  x: tf.Tensor4D,
  before: Pair,
  after: Pair,
): { cropped: tf.Tensor4D; padding: tf.backend_util.ExplicitPadding } {
  const [, h, w] = x.shape;
  const cropTop = Math.max(0, -before[0]);
  const cropLeft = Math.max(0, -before[1]);
  const cropBottom = Math.max(0, -after[0]);
  const cropRight = Math.max(0, -after[1]);
  const cropped =
    cropTop + cropLeft + cropBottom + cropRight === 0
      ? x
      : tf.slice(
          x,
          [0, cropTop, cropLeft, 0],
          [-1, h - cropTop - cropBottom, w - cropLeft - cropRight, -1],
        );
  return {
    cropped,
    padding: [
      [0, 0],
      [Math.max(0, before[0]), Math.max(0, after[0])],
      [Math.max(0, before[1]), Math.max(0, after[1])],
      [0, 0],
    ],
  };
}

/**
 * Inserts `s − 1` zero rows/columns after every spatial sample (including the last, which the
 * caller's padding arithmetic absorbs): `[b, h, w, c] → [b, h·s_h, w·s_w, c]`, by a reshape to
 * rank 6, one pad and a reshape back — no scatter needed.
 */
export function interleaveZeros(dy: tf.Tensor4D, strides: Pair): tf.Tensor4D {
  const [sh, sw] = strides;
  if (sh === 1 && sw === 1) {
    return dy;
  }
  const [b, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [b, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return tf.reshape(spread, [b, h * sh, w * sw, c]);
}
