import * as tf from '@tensorflow/tfjs';
import {
  assertNhwc,
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

const KERNEL = tf.Conv2DBackpropFilter;

/**
 * Gradient of `tf.conv2d` (NHWC, no dilation) with respect to its filter, built from one forward
 * convolution — the `Conv2DBackpropFilter` kernel of TensorFlow
 * (`tensorflow/core/kernels/conv_grad_filter_ops.cc`), here for backends that only have fast
 * forward convolutions.
 *
 * With `xp` the zero-padded input, the filter gradient is
 * `dW[i, j, c, o] = Σ_{b, y, x} xp[b, y·s_h + i, x·s_w + j, c] · dy[b, y, x, o]`,
 * which is itself a stride-1 convolution whose "batch" is the input channels, whose input channels
 * are the batch, and whose filter is `dy` dilated by the forward stride:
 * input `x → [inC, H, W, batch]`, filter `dy → [outH, outW, batch, outC]`, output
 * `[inC, fh, fw, outC] → [fh, fw, inC, outC]`.
 *
 * @param x input of the forward conv, float32 `[batch, height, width, inChannels]`.
 * @param dy gradient of the forward output, float32 `[batch, outHeight, outWidth, outChannels]`.
 * @param filterShape `[filterHeight, filterWidth, inChannels, outChannels]`.
 * @param strides forward strides, `[strideHeight, strideWidth]`.
 * @param pad forward padding ('same', 'valid', a number, or explicit NHWC padding).
 * @param dimRoundingMode forward rounding mode when `pad` is a number.
 * @returns float32 `filterShape`.
 *
 * @example
 * const dW = conv2dBackpropFilter(x, dy, [5, 5, 1, 6], [1, 1], 'valid');
 */
export function conv2dBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4,
  strides: Pair,
  pad: ConvPad,
  dimRoundingMode?: DimRoundingMode,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [fh, fw, inC, outC] = filterShape;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape,
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      'channelsLast',
    );
    const [batch, h, w] = x.shape;
    assertShape(x.shape, [batch, h, w, inC], 'x', KERNEL);
    assertShape(dy.shape, [batch, info.outHeight, info.outWidth, outC], 'dy', KERNEL);

    const [sh, sw] = strides;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    // Rows/columns of the padded input the forward pass reads: the last output row starts at
    // (outH - 1)·s and spans fh rows. Extra input past that is cropped, a shortfall zero-padded.
    const bottom = (info.outHeight - 1) * sh + fh - (h + top);
    const right = (info.outWidth - 1) * sw + fw - (w + left);

    const xT = tf.transpose(x, [3, 1, 2, 0]);
    const dyT = tf.transpose(dy, [1, 2, 0, 3]);
    const { cropped, padding } = cropForPadding(xT, [top, left], [bottom, right]);
    const grad = tf.conv2d(cropped, dyT, 1, padding, 'NHWC', [sh, sw]);
    return tf.transpose(grad, [1, 2, 0, 3]);
  });
}

/** `Conv2DBackpropFilter` as a composite kernel; inputs `{x, dy}`, attrs as in tfjs-core. */
export const conv2dBackpropFilterKernel: tf.KernelFunc = compositeKernel(
  KERNEL,
  ['x', 'dy'],
  ([x, dy], attrs) => {
    assertNhwc(attrs.dataFormat, KERNEL);
    return conv2dBackpropFilter(
      x as tf.Tensor4D,
      dy as tf.Tensor4D,
      toShape4(attrs.filterShape, 'filterShape', KERNEL),
      toPair(attrs.strides, 'strides', KERNEL),
      toPad(attrs.pad, KERNEL),
      toRounding(attrs.dimRoundingMode, KERNEL),
    );
  },
);
