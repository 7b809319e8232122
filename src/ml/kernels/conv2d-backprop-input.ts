import * as tf from '@tensorflow/tfjs';
import {
  assertNhwc,
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

const KERNEL = tf.Conv2DBackpropInput;

/**
 * Gradient of `tf.conv2d` (NHWC, no dilation) with respect to its input — the
 * `Conv2DBackpropInput` kernel of TensorFlow (`tensorflow/core/kernels/conv_grad_input_ops.cc`),
 * i.e. a transposed convolution (Dumoulin & Visin, *A guide to convolution arithmetic for deep
 * learning*, 2016, §4), built from one forward convolution so XNNPACK runs it: tfjs-backend-wasm's
 * own kernel is a scalar loop several times slower.
 *
 * `dy` is zero-interleaved by the stride, padded by `f − 1 − padTop` in front, and convolved
 * (stride 1) with the filter flipped spatially and with its channel axes swapped:
 * `dx[b, h, w, c] = Σ_{i, j, o} dyz[b, h + top − i, w + left − j, o] · W[i, j, c, o]`.
 *
 * @param inputShape shape of the forward input `[batch, height, width, inChannels]`.
 * @param dy gradient of the forward output, float32 `[batch, outHeight, outWidth, outChannels]`.
 * @param filter forward filter, float32 `[filterHeight, filterWidth, inChannels, outChannels]`.
 * @param strides forward strides `[h, w]`.
 * @param pad forward padding.
 * @param dimRoundingMode forward rounding mode when `pad` is a number.
 * @returns float32 `inputShape`.
 */
export function conv2dBackpropInput(
  inputShape: Shape4,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: Pair,
  pad: ConvPad,
  dimRoundingMode?: DimRoundingMode,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, h, w, inC] = inputShape;
    const [fh, fw, , outC] = filter.shape;
    const info = tf.backend_util.computeConv2DInfo(
      inputShape,
      filter.shape,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      'channelsLast',
    );
    assertShape(filter.shape, [fh, fw, inC, outC], 'filter', KERNEL);
    assertShape(dy.shape, [batch, info.outHeight, info.outWidth, outC], 'dy', KERNEL);

    const dyz = interleaveZeros(dy, strides);
    const [, zh, zw] = dyz.shape;
    const top = fh - 1 - info.padInfo.top;
    const left = fw - 1 - info.padInfo.left;
    const bottom = h + fh - 1 - top - zh;
    const right = w + fw - 1 - left - zw;
    const { cropped, padding } = cropForPadding(dyz, [top, left], [bottom, right]);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    return tf.conv2d(cropped, flipped, 1, padding, 'NHWC');
  });
}

/** `Conv2DBackpropInput` as a composite kernel; inputs `{dy, filter}`, attrs as in tfjs-core. */
export const conv2dBackpropInputKernel: tf.KernelFunc = compositeKernel(
  KERNEL,
  ['dy', 'filter'],
  ([dy, filter], attrs) => {
    assertNhwc(attrs.dataFormat, KERNEL);
    return conv2dBackpropInput(
      toShape4(attrs.inputShape, 'inputShape', KERNEL),
      dy as tf.Tensor4D,
      filter as tf.Tensor4D,
      toPair(attrs.strides, 'strides', KERNEL),
      toPad(attrs.pad, KERNEL),
      toRounding(attrs.dimRoundingMode, KERNEL),
    );
  },
);
