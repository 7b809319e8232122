import * as tf from '@tensorflow/tfjs';
import {
  assertShape,
  compositeKernel,
  cropForPadding,
  interleaveZeros,
  toPad,
  toPair,
  toRounding,
  toShape4,
  type ConvPad,
  type DimRoundingMode,
  type Pair,
  type Shape4,
} from './composite-kernel.ts';

const KERNEL = tf.DepthwiseConv2dNativeBackpropInput;

/**
 * Gradient of `tf.depthwiseConv2d` (NHWC) with respect to its input, built from one forward
 * depthwise convolution — the `DepthwiseConv2dNativeBackpropInput` kernel of TensorFlow
 * (`tensorflow/core/kernels/depthwise_conv_grad_op.cc`); the "transposed convolution" identity of
 * Dumoulin & Visin, *A guide to convolution arithmetic for deep learning* (2016), §4.
 *
 * `dy` is zero-interleaved by the stride (`s − 1` zeros between samples), padded by
 * `(f − 1)·d − padTop` in front, convolved (stride 1, the forward dilation) with the spatially
 * flipped filter, and the channel multiplier is summed out:
 * `dx[b, h, w, c] = Σ_{i, j, m} dyz[b, h + top − i·d_h, w + left − j·d_w, c·M + m] · W[i, j, c, m]`.
 *
 * @param inputShape shape of the forward input `[batch, height, width, inChannels]`.
 * @param dy gradient of the forward output, float32
 *   `[batch, outHeight, outWidth, inChannels · channelMultiplier]`.
 * @param filter forward filter, float32 `[filterHeight, filterWidth, inChannels, channelMultiplier]`.
 * @param strides forward strides `[h, w]`.
 * @param dilations forward dilations `[h, w]`.
 * @param pad forward padding.
 * @param dimRoundingMode forward rounding mode when `pad` is a number.
 * @returns float32 `inputShape`.
 */
export function depthwiseConv2dBackpropInput(
  inputShape: Shape4,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: Pair,
  dilations: Pair,
  pad: ConvPad,
  dimRoundingMode?: DimRoundingMode,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, h, w, inC] = inputShape;
    const [fh, fw, , mult] = filter.shape;
    const info = tf.backend_util.computeConv2DInfo(
      inputShape,
      filter.shape,
      strides,
      dilations,
      pad,
      dimRoundingMode,
      true,
      'channelsLast',
    );
    assertShape(filter.shape, [fh, fw, inC, mult], 'filter', KERNEL);
    assertShape(dy.shape, [batch, info.outHeight, info.outWidth, inC * mult], 'dy', KERNEL);

    const [dh, dw] = dilations;
    const dyz = interleaveZeros(dy, strides);
    const [, zh, zw] = dyz.shape;
    const top = (fh - 1) * dh - info.padInfo.top;
    const left = (fw - 1) * dw - info.padInfo.left;
    // Padded length must be h + (fh − 1)·dh for a stride-1 "valid" conv to yield h rows.
    const bottom = h + (fh - 1) * dh - top - zh;
    const right = w + (fw - 1) * dw - left - zw;
    const { cropped, padding } = cropForPadding(dyz, [top, left], [bottom, right]);

    const flipped = tf.reshape<tf.Rank.R4>(tf.reverse(filter, [0, 1]), [fh, fw, inC * mult, 1]);
    const dx = tf.depthwiseConv2d(cropped, flipped, 1, padding, 'NHWC', [dh, dw]);
    if (mult === 1) {
      return dx;
    }
    return tf.sum(tf.reshape(dx, [batch, h, w, inC, mult]), 4);
  });
}

/** `DepthwiseConv2dNativeBackpropInput` as a composite kernel; inputs `{dy, filter}`. */
export const depthwiseConv2dBackpropInputKernel: tf.KernelFunc = compositeKernel(
  KERNEL,
  ['dy', 'filter'],
  ([dy, filter], attrs) =>
    depthwiseConv2dBackpropInput(
      toShape4(attrs.inputShape, 'inputShape', KERNEL),
      dy as tf.Tensor4D,
      filter as tf.Tensor4D,
      toPair(attrs.strides, 'strides', KERNEL),
      toPair(attrs.dilations, 'dilations', KERNEL),
      toPad(attrs.pad, KERNEL),
      toRounding(attrs.dimRoundingMode, KERNEL),
    ),
);
