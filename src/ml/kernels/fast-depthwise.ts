import * as tf from '@tensorflow/tfjs';
import { toShape4 } from './composite-kernel.ts';
import { checkDepthwiseShapes, depthwiseGeometry } from './conv-geometry.ts';
import { heapKernels, type HeapKernels } from './heap-kernels.ts';
import type { ConvGeometry } from './wasm-gemm.ts';
import { heapOffset, isWasmBackend, type WasmBackendLike } from './wasm-heap.ts';

/**
 * The in-place depthwise kernels (`wasm/depthwise.c`) on MobileNet-fashion's layers, batch 128,
 * one core, against what they replace (XNNPACK's forward; this project's composites of
 * `depthwise-conv2d-backprop-*.ts`, which run XNNPACK's depthwise convolution over the batch
 * folded into channels): see docs/engine-speed.md. They take float32 NHWC operands with a channel
 * multiplier of 1, no dilation, and a multiple of 4 channels (MobileNet's layers); anything else
 * goes to the kernel they wrap.
 */
interface Prepared {
  readonly backend: WasmBackendLike;
  readonly kernels: HeapKernels;
  readonly g: ConvGeometry;
}

/**
 * The backend, kernels and geometry when the in-place kernels take this call (float32 operands,
 * wasm backend, see {@link depthwiseGeometry}), else undefined.
 */
function prepare(
  backend: unknown,
  operands: readonly (tf.TensorInfo | undefined)[],
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: tf.NamedAttrMap,
  kernelName: string,
): Prepared | undefined {
  if (!isWasmBackend(backend) || operands.some((t) => t === undefined || t.dtype !== 'float32')) {
    return undefined;
  }
  const g = depthwiseGeometry(xShape, filterShape, attrs, kernelName);
  const kernels = heapKernels(backend);
  return g === undefined || kernels === undefined ? undefined : { backend, kernels, g };
}

/**
 * `DepthwiseConv2dNative` and `FusedDepthwiseConv2D` on the wasm backend: in place on the heap
 * (`depthwise_conv2d`), with `FusedDepthwiseConv2D`'s per-channel bias and ReLU applied as each
 * output is written. Inputs `{x: [b, h, w, c], filter: [fh, fw, c, 1], bias?: [c]}`, attrs as in
 * tfjs-core; output `[b, oh, ow, c]`. Other cases (a channel multiplier, dilations, other
 * activations, a broadcast bias, non-float32 operands) go to `original`.
 *
 * @throws {Error} when x and the filter disagree
 */
export function createFastDepthwiseConv2DKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs;
    const attrs = args.attrs ?? {};
    const activation = attrs.activation ?? 'linear';
    if (
      x === undefined ||
      filter === undefined ||
      preluActivationWeights !== undefined ||
      (activation !== 'linear' && activation !== 'relu') ||
      (bias !== undefined && (bias.shape.length !== 1 || bias.shape[0] !== x.shape[3]))
    ) {
      return original.kernelFunc(args);
    }
    const p = prepare(
      args.backend,
      bias === undefined ? [x, filter] : [x, filter, bias],
      x.shape,
      filter.shape,
      attrs,
      tf.DepthwiseConv2dNative,
    );
    if (p === undefined) {
      return original.kernelFunc(args);
    }
    const { backend, kernels, g } = p;
    const outShape = [g.batch, g.outHeight, g.outWidth, g.outChannels];
    checkDepthwiseShapes(g, x.shape, outShape, filter.shape, tf.DepthwiseConv2dNative);
    const out = backend.makeOutput(outShape, 'float32');
    kernels.depthwiseConv2d(
      g,
      heapOffset(backend, x),
      heapOffset(backend, filter),
      bias === undefined ? 0 : heapOffset(backend, bias),
      activation === 'relu',
      heapOffset(backend, out),
    );
    return out;
  };
}

/**
 * `DepthwiseConv2dNativeBackpropInput` on the wasm backend, in place (`depthwise_conv2d_input_grad`,
 * a gather over the taps that reach each input pixel). Inputs `{dy, filter}`, attrs with
 * `inputShape`; output float32 `inputShape`. Other cases go to `original`.
 *
 * @throws {Error} when dy, the filter and `inputShape` disagree
 */
export function createFastDepthwiseBackpropInputKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs;
    const attrs = args.attrs ?? {};
    const kernelName = tf.DepthwiseConv2dNativeBackpropInput;
    if (dy === undefined || filter === undefined) {
      return original.kernelFunc(args);
    }
    const inputShape = toShape4(attrs.inputShape, 'inputShape', kernelName);
    const p = prepare(args.backend, [dy, filter], inputShape, filter.shape, attrs, kernelName);
    if (p === undefined) {
      return original.kernelFunc(args);
    }
    const { backend, kernels, g } = p;
    checkDepthwiseShapes(g, inputShape, dy.shape, filter.shape, kernelName);
    const out = backend.makeOutput([...inputShape], 'float32');
    kernels.depthwiseConv2dInputGrad(
      g,
      heapOffset(backend, dy),
      heapOffset(backend, filter),
      heapOffset(backend, out),
    );
    return out;
  };
}

/**
 * `DepthwiseConv2dNativeBackpropFilter` on the wasm backend, in place
 * (`depthwise_conv2d_filter_grad`: float32 sums within an image, float64 across images). Inputs
 * `{x, dy}`, attrs with `filterShape`; output float32 `filterShape`. Other cases go to
 * `original`.
 *
 * @throws {Error} when x, dy and `filterShape` disagree
 */
export function createFastDepthwiseBackpropFilterKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs;
    const attrs = args.attrs ?? {};
    const kernelName = tf.DepthwiseConv2dNativeBackpropFilter;
    if (x === undefined || dy === undefined) {
      return original.kernelFunc(args);
    }
    const filterShape = toShape4(attrs.filterShape, 'filterShape', kernelName);
    const p = prepare(args.backend, [x, dy], x.shape, filterShape, attrs, kernelName);
    if (p === undefined) {
      return original.kernelFunc(args);
    }
    const { backend, kernels, g } = p;
    checkDepthwiseShapes(g, x.shape, dy.shape, filterShape, kernelName);
    const out = backend.makeOutput([...filterShape], 'float32');
    kernels.depthwiseConv2dFilterGrad(
      g,
      heapOffset(backend, x),
      heapOffset(backend, dy),
      heapOffset(backend, out),
    );
    return out;
  };
}
