import * as tf from '@tensorflow/tfjs';
import { assertShape, toPad, toPair, toRounding } from './composite-kernel.ts';
import { convGeometryOf, type ConvGeometry } from './wasm-gemm.ts';

/**
 * The conv geometry of a conv kernel's attributes (float32 NHWC, dilation 1), or undefined when
 * the GEMM and in-place paths can't take it (another data format, dilations). With `depthwise`,
 * the filter is `[fh, fw, inC, multiplier]` and `outChannels` is `inC · multiplier`.
 */
export function geometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: tf.NamedAttrMap,
  kernelName: string,
  depthwise = false,
): ConvGeometry | undefined {
  const format = attrs.dataFormat;
  if (format != null && format !== 'NHWC' && format !== 'channelsLast') {
    return undefined;
  }
  const dilations =
    attrs.dilations == null ? [1, 1] : toPair(attrs.dilations, 'dilations', kernelName);
  if (dilations[0] !== 1 || dilations[1] !== 1) {
    return undefined;
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    toPair(attrs.strides, 'strides', kernelName),
    1,
    toPad(attrs.pad, kernelName),
    toRounding(attrs.dimRoundingMode, kernelName),
    depthwise,
    'channelsLast',
  );
  return convGeometryOf(info);
}

/**
 * The geometry of a depthwise conv kernel's attributes as {@link geometry}'s, or undefined where
 * the in-place depthwise kernels can't take it (another data format, dilations, a channel
 * multiplier other than 1, channels not a multiple of 4).
 */
export function depthwiseGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: tf.NamedAttrMap,
  kernelName: string,
): ConvGeometry | undefined {
  const inC = xShape[3] ?? 0;
  if (xShape.length !== 4 || filterShape.length !== 4 || filterShape[3] !== 1 || inC % 4 !== 0) {
    return undefined;
  }
  return inC === 0 ? undefined : geometry(xShape, filterShape, attrs, kernelName, true);
}

/**
 * Checks that x, dy and the filter agree with the geometry, as the composites of
 * `conv2d-backprop-*.ts` do: these kernels read and write the backend's heap by the geometry, so a
 * mismatched `dy` (tfjs-core's `conv2dTranspose` checks only channel counts) would read or write
 * past its tensor.
 *
 * @throws {Error} naming the operand whose shape is wrong
 */
export function checkShapes(
  g: ConvGeometry,
  xShape: readonly number[],
  dyShape: readonly number[],
  filterShape: readonly number[],
  kernelName: string,
): void {
  assertShape(xShape, [g.batch, g.inHeight, g.inWidth, g.inChannels], 'x', kernelName);
  assertShape(
    filterShape,
    [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels],
    'filter',
    kernelName,
  );
  assertShape(dyShape, [g.batch, g.outHeight, g.outWidth, g.outChannels], 'dy', kernelName);
}

/**
 * {@link checkShapes} for a depthwise convolution (channel multiplier 1): x `[b, h, w, c]`,
 * filter `[fh, fw, c, 1]`, dy `[b, oh, ow, c]`.
 *
 * @throws {Error} naming the operand whose shape is wrong
 */
export function checkDepthwiseShapes(
  g: ConvGeometry,
  xShape: readonly number[],
  dyShape: readonly number[],
  filterShape: readonly number[],
  kernelName: string,
): void {
  assertShape(xShape, [g.batch, g.inHeight, g.inWidth, g.inChannels], 'x', kernelName);
  assertShape(filterShape, [g.filterHeight, g.filterWidth, g.inChannels, 1], 'filter', kernelName);
  assertShape(dyShape, [g.batch, g.outHeight, g.outWidth, g.inChannels], 'dy', kernelName);
}

export function size(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}
