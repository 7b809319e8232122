import * as tf from '@tensorflow/tfjs';
import {
  assertShape,
  compositeKernel,
  interleaveZeros,
  toPad,
  toPair,
  toRounding,
  type ConvPad,
  type DimRoundingMode,
  type Pair,
  type Shape4,
} from './composite-kernel.ts';

const KERNEL = tf.MaxPoolGrad;

/**
 * Gradient of `tf.maxPool` (NHWC) with respect to its input — TensorFlow's `MaxPoolGrad`
 * (`tensorflow/core/kernels/maxpooling_op.cc`): each window's output gradient goes to the
 * window's maximum, the first one in row-major order on ties, summed where windows overlap.
 * Built from arithmetic against the pooled output instead of a scalar loop:
 *
 * - windows that tile the input (stride = window, no leading padding — 2×2/2 and the like) are
 *   handled in one pass over a `[batch, outH, fh, outW, fw, channels]` view;
 * - otherwise each of the `fh·fw` window taps is a strided slice, masked, zero-interleaved back to
 *   input resolution and summed.
 *
 * On wasm this fixes tfjs-backend-wasm 4.22's kernel, which starts its search for the maximum at
 * the smallest positive float and so drops the gradient of every window whose maximum is ≤ 0 —
 * silently wrong training wherever pooling sees negative values (pooling before the activation).
 * The tiled path is also a little faster (LeNet's first pooling layer, 128×24×24×6: 7 ms against
 * 9 ms); the tap-by-tap path is slower, see {@link createMaxPoolGradKernel}.
 *
 * @param dy gradient of the pooled output, float32 `[batch, outHeight, outWidth, channels]`.
 * @param x the forward input, float32 `[batch, height, width, channels]`.
 * @param y the forward output `maxPool(x)`, float32, same shape as `dy`.
 * @param filterSize window `[h, w]`.
 * @param strides `[h, w]`.
 * @param pad forward padding (padded positions never win).
 * @param dimRoundingMode forward rounding mode when `pad` is a number.
 * @returns float32 `[batch, height, width, channels]`.
 */
export function maxPoolGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  filterSize: Pair,
  strides: Pair,
  pad: ConvPad,
  dimRoundingMode?: DimRoundingMode,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computePool2DInfo(
      x.shape,
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const [batch, , , channels] = x.shape;
    const outShape = [batch, info.outHeight, info.outWidth, channels];
    assertShape(dy.shape, outShape, 'dy', KERNEL);
    assertShape(y.shape, outShape, 'output', KERNEL);
    const tiles = windowsTile(info);
    return tiles ? tiledGrad(dy, x, y, info) : tapwiseGrad(dy, x, y, info);
  });
}

/** Whether the windows tile the input: stride = window and no leading padding (2×2/2 'valid'). */
function windowsTile(info: tf.backend_util.Conv2DInfo): boolean {
  return (
    info.strideHeight === info.filterHeight &&
    info.strideWidth === info.filterWidth &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0 &&
    info.outHeight * info.filterHeight <= info.inHeight &&
    info.outWidth * info.filterWidth <= info.inWidth
  );
}

/** Non-overlapping windows: one 6-D view, first maximum per window by smallest tap index. */
function tiledGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
): tf.Tensor4D {
  const [batch, h, w, channels] = x.shape;
  const { outHeight: oh, outWidth: ow, filterHeight: fh, filterWidth: fw } = info;
  const usedH = oh * fh;
  const usedW = ow * fw;
  const xUsed = usedH === h && usedW === w ? x : tf.slice(x, [0, 0, 0, 0], [-1, usedH, usedW, -1]);
  const windows = tf.reshape(xUsed, [batch, oh, fh, ow, fw, channels]);
  const pooled = tf.reshape(y, [batch, oh, 1, ow, 1, channels]);
  // Each tap gets a key, highest for the first maximum: 1 − index for maxima (index = i·fw + j),
  // 1 − index − taps for the rest, using notMax = sign(max − value) ∈ {0, 1}. Arithmetic instead
  // of comparisons (which tfjs-backend-wasm broadcasts ~70× slower), and the best key per window
  // by an XNNPACK max-pool instead of a reduction over two strided axes.
  const taps = fh * fw;
  const oneMinusIndex = tf.reshape(tf.range(1, 1 - taps, -1, 'float32'), [1, 1, fh, 1, fw, 1]);
  const notMax = tf.sign(tf.sub(pooled, windows));
  const keys = tf.add(tf.mul(notMax, -taps), oneMinusIndex);
  const best = tf.maxPool(
    tf.reshape<tf.Rank.R4>(keys, [batch, usedH, usedW, channels]),
    [fh, fw],
    [fh, fw],
    'valid',
  );
  // Keys are integers, so relu(key − (best − 1)) is 1 at the winner and 0 elsewhere.
  const threshold = tf.reshape(tf.sub(best, 1), [batch, oh, 1, ow, 1, channels]);
  const mask = tf.relu(tf.sub(keys, threshold));
  const grad = tf.mul(mask, tf.reshape(dy, [batch, oh, 1, ow, 1, channels]));
  const dx = tf.reshape<tf.Rank.R4>(grad, [batch, usedH, usedW, channels]);
  if (usedH === h && usedW === w) {
    return dx;
  }
  return tf.pad(dx, [
    [0, 0],
    [0, h - usedH],
    [0, w - usedW],
    [0, 0],
  ]);
}

/** General windows: per tap, mask the first maximum and scatter back by zero-interleaving. */
function tapwiseGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
): tf.Tensor4D {
  const [batch, h, w, channels] = x.shape;
  const { outHeight: oh, outWidth: ow, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Padded extent every window fits in; padding is -∞ so it never equals a maximum.
  const hp = Math.max(h + top, (oh - 1) * sh + fh);
  const wp = Math.max(w + left, (ow - 1) * sw + fw);
  const xp = tf.pad(
    x,
    [
      [0, 0],
      [top, hp - h - top],
      [left, wp - w - left],
      [0, 0],
    ],
    -Infinity,
  );
  // Float masks, as in tiledGrad: isMax = 1 − sign(max − value); taken counts earlier winners.
  let taken: tf.Tensor4D | undefined;
  const parts: tf.Tensor4D[] = [];
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const tap = tf.stridedSlice(
        xp,
        [0, i, j, 0],
        [batch, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, channels],
        [1, sh, sw, 1],
      ) as tf.Tensor4D;
      const isMax = tf.sub<tf.Tensor4D>(1, tf.sign(tf.sub(y, tap)));
      const wins = taken === undefined ? isMax : tf.mul<tf.Tensor4D>(isMax, tf.sub(1, taken));
      taken = taken === undefined ? wins : tf.add<tf.Tensor4D>(taken, wins);
      const grad = tf.mul<tf.Tensor4D>(wins, dy);
      // Tap (i, j) of window (r, c) is padded-input pixel (r·sh + i, c·sw + j).
      const spread = interleaveZeros(grad, [sh, sw]);
      parts.push(
        tf.slice(
          tf.pad(spread, [
            [0, 0],
            [i, Math.max(0, hp - i - oh * sh)],
            [j, Math.max(0, wp - j - ow * sw)],
            [0, 0],
          ]),
          [0, 0, 0, 0],
          [-1, hp, wp, -1],
        ),
      );
    }
  }
  const dxp = parts.length === 1 ? parts[0]! : tf.addN(parts);
  return tf.slice(dxp, [0, top, left, 0], [-1, h, w, -1]);
}

/** Smallest positive normal float32: tfjs-backend-wasm 4.22 starts its max search here. */
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * `MaxPoolGrad` as a composite kernel; inputs `{dy, input, output}`, attrs as in tfjs-core.
 *
 * With the backend's own kernel as `original`, windows that do not tile the input (overlapping
 * 3×3/2, 'same' padding on odd sizes) go to it whenever every window maximum is above
 * {@link FLOAT32_MIN_NORMAL} — it is only wrong below that and is much faster there than the
 * tap-by-tap composite; ties then go to the last maximum instead of the first (both are valid
 * subgradients). One reduction over the pooled output decides.
 */
export function createMaxPoolGradKernel(original?: tf.KernelConfig): tf.KernelFunc {
  const composite = compositeKernel(
    KERNEL,
    ['dy', 'input', 'output'],
    ([dy, input, output], attrs) =>
      maxPoolGrad(
        dy as tf.Tensor4D,
        input as tf.Tensor4D,
        output as tf.Tensor4D,
        toPair(attrs.filterSize, 'filterSize', KERNEL),
        toPair(attrs.strides, 'strides', KERNEL),
        toPad(attrs.pad, KERNEL),
        toRounding(attrs.dimRoundingMode, KERNEL),
      ),
  );
  if (original === undefined) {
    return composite;
  }
  return (args) => {
    const { input, output } = args.inputs;
    if (input === undefined || output === undefined) {
      return composite(args);
    }
    const info = tf.backend_util.computePool2DInfo(
      input.shape as Shape4,
      toPair(args.attrs?.filterSize, 'filterSize', KERNEL),
      toPair(args.attrs?.strides, 'strides', KERNEL),
      1,
      toPad(args.attrs?.pad, KERNEL),
      toRounding(args.attrs?.dimRoundingMode, KERNEL),
    );
    if (windowsTile(info) || !('rank' in output)) {
      return composite(args);
    }
    const lowest = tf.tidy(() => tf.min(output as tf.Tensor).dataSync()[0] ?? -Infinity);
    return lowest > FLOAT32_MIN_NORMAL ? original.kernelFunc(args) : composite(args);
  };
}
