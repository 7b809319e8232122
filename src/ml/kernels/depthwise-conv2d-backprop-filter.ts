import * as tf from '@tensorflow/tfjs';
import {
  assertShape,
  compositeKernel,
  cropForPadding,
  toPad,
  toPair,
  toRounding,
  toShape4,
  type ConvPad,
  type DimRoundingMode,
  type Pair,
  type Shape4,
} from './composite-kernel.ts';

const KERNEL = tf.DepthwiseConv2dNativeBackpropFilter;

/**
 * Gradient of `tf.depthwiseConv2d` (NHWC) with respect to its filter, built from one forward
 * depthwise convolution — the `DepthwiseConv2dNativeBackpropFilter` kernel of TensorFlow
 * (`tensorflow/core/kernels/depthwise_conv_grad_op.cc`).
 *
 * With `xp` the zero-padded input and `M` the channel multiplier,
 * `dW[i, j, c, m] = Σ_{b, y, x} xp[b, y·s_h + i·d_h, x·s_w + j·d_w, c] · dy[b, y, x, c·M + m]`.
 * Each (batch, channel) pair is an independent depthwise channel: input `x → [1, H, W, batch·inC]`,
 * filter `dy → [outH, outW, batch·inC, M]` dilated by the forward stride, strided by the forward
 * dilation; the batch is then summed out.
 *
 * @param x input of the forward conv, float32 `[batch, height, width, inChannels]`.
 * @param dy gradient of the forward output, float32
 *   `[batch, outHeight, outWidth, inChannels · channelMultiplier]`.
 * @param filterShape `[filterHeight, filterWidth, inChannels, channelMultiplier]`.
 * @param strides forward strides `[h, w]`.
 * @param dilations forward dilations `[h, w]`; strides and dilations cannot both exceed 1.
 * @param pad forward padding.
 * @param dimRoundingMode forward rounding mode when `pad` is a number.
 * @returns float32 `filterShape`.
 * @throws {Error} when both a stride and a dilation exceed 1 (no single forward conv expresses it).
 */
export function depthwiseConv2dBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4,
  strides: Pair,
  dilations: Pair,
  pad: ConvPad,
  dimRoundingMode?: DimRoundingMode,
): tf.Tensor4D {
  const [sh, sw] = strides;
  const [dh, dw] = dilations;
  if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) {
    throw new Error(
      `${KERNEL}: strides [${sh}, ${sw}] together with dilations [${dh}, ${dw}] are not supported ` +
        `(one of them must be 1).`,
    );
  }
  return tf.tidy(() => {
    const [fh, fw, inC, mult] = filterShape;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape,
      filterShape,
      strides,
      dilations,
      pad,
      dimRoundingMode,
      true,
      'channelsLast',
    );
    const [batch, h, w] = x.shape;
    assertShape(x.shape, [batch, h, w, inC], 'x', KERNEL);
    assertShape(dy.shape, [batch, info.outHeight, info.outWidth, inC * mult], 'dy', KERNEL);

    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const bottom = (info.outHeight - 1) * sh + (fh - 1) * dh + 1 - (h + top);
    const right = (info.outWidth - 1) * sw + (fw - 1) * dw + 1 - (w + left);

    const xT = tf.reshape<tf.Rank.R4>(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, batch * inC]);
    const dyT = tf.reshape<tf.Rank.R4>(
      tf.transpose(
        tf.reshape(dy, [batch, info.outHeight, info.outWidth, inC, mult]),
        [1, 2, 0, 3, 4],
      ),
      [info.outHeight, info.outWidth, batch * inC, mult],
    );
    const { cropped, padding } = cropForPadding(xT, [top, left], [bottom, right]);
    // Forward stride and dilation swap roles: output tap i advances the input by d, dy's taps by s.
    const grad = tf.depthwiseConv2d(cropped, dyT, [dh, dw], padding, 'NHWC', [sh, sw]);
    const perBatch = tf.reshape(grad, [fh, fw, batch, inC * mult]);
    return tf.reshape(tf.sum(perBatch, 2), filterShape);
  });
}

/** `DepthwiseConv2dNativeBackpropFilter` as a composite kernel; inputs `{x, dy}`. */
export const depthwiseConv2dBackpropFilterKernel: tf.KernelFunc = compositeKernel(
  KERNEL,
  ['x', 'dy'],
  ([x, dy], attrs) =>
    depthwiseConv2dBackpropFilter(
      x as tf.Tensor4D,
      dy as tf.Tensor4D,
      toShape4(attrs.filterShape, 'filterShape', KERNEL),
      toPair(attrs.strides, 'strides', KERNEL),
      toPair(attrs.dilations, 'dilations', KERNEL),
      toPad(attrs.pad, KERNEL),
      toRounding(attrs.dimRoundingMode, KERNEL),
    ),
);
