/**
 * Weight quantization in the TF.js weights-manifest format: what `tensorflowjs_converter
 * --quantize_uint8 / --quantize_float16` writes and `tf.io.decodeWeights` reads back, done in
 * Node (tfjs 4.22's `tf.io` decodes quantized weights but has no encoder).
 *
 * - `uint8`: affine, one range per tensor: `value = q * scale + min`, q in 0..255. As in the
 *   converter (`tensorflowjs/quantization.py`, after TF-Lite's `NudgeQuantizationRange`), when the
 *   range covers 0 it is shifted by less than half a step so that 0 is exactly representable
 *   (zero biases, zero padding stay exact). Error per value at most `scale / 2`. A quarter of the
 *   float32 size.
 * - `float16`: IEEE 754 half precision, rounded to nearest even; relative error at most 2^-11 for
 *   |value| in [6.1e-5, 65504]. Half the float32 size.
 *
 * Only float32 weights of two or more dimensions (kernels) are quantized, as the converter's
 * `--quantize_uint8` with a kernel-only pattern does: biases and batch norm's gammas, betas and moving statistics
 * (a few kilobytes) stay float32, since one range per tensor can crush a small moving variance
 * and magnify its channel. int32 and bool weights are stored as they are.
 */
import * as tf from '@tensorflow/tfjs';

/** The quantizations {@link quantizeWeights} writes. */
export const QUANTIZE_DTYPES = ['uint8', 'float16'] as const;

/** One of {@link QUANTIZE_DTYPES}. */
export type QuantizeDtype = (typeof QUANTIZE_DTYPES)[number];

/** The manifest's record of how one weight is quantized. */
export type WeightQuantization = NonNullable<tf.io.WeightsManifestEntry['quantization']>;

/** Bytes per value of each unquantized dtype a layers model's weights can have. */
const PLAIN_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1 };

/** Largest finite float16, 65504. */
const FLOAT16_MAX_BITS = 0x7bff;

/**
 * Quantizes the values of one float32 tensor.
 *
 * @param values the tensor's values, any shape flattened.
 * @returns the stored bytes (`values.length` for uint8, `2 * values.length` little-endian for
 *   float16) and the manifest's `quantization` record.
 * @throws {Error} when a value is NaN or infinite (it has no quantized form).
 * @example
 * quantizeValues(Float32Array.from([-1, 0, 1]), 'uint8').quantization;
 * // { dtype: 'uint8', scale: 2 / 255, min: -128 * 2 / 255 }  (0 is q = 128 exactly)
 */
export function quantizeValues(
  values: Float32Array,
  dtype: QuantizeDtype,
): { bytes: Uint8Array; quantization: WeightQuantization } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) throw new Error(`cannot quantize ${v}: not a finite number`);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (dtype === 'float16') {
    const half = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) half[i] = toFloat16Bits(values[i] ?? 0);
    return { bytes: littleEndian16(half), quantization: { dtype: 'float16' } };
  }
  const bytes = new Uint8Array(values.length);
  if (values.length === 0 || min === max) {
    // One value (or none): q = 0 everywhere, min carries it.
    return {
      bytes,
      quantization: { dtype: 'uint8', scale: 1, min: values.length === 0 ? 0 : min },
    };
  }
  const scale = (max - min) / 255;
  let lo = min;
  if (min <= 0 && max >= 0) {
    // Nudge the range so that q = round(-min / scale) decodes to exactly 0.
    lo = -Math.round(-min / scale) * scale;
  }
  for (let i = 0; i < values.length; i++) {
    const q = Math.round(((values[i] ?? 0) - lo) / scale);
    bytes[i] = Math.min(255, Math.max(0, q));
  }
  return { bytes, quantization: { dtype: 'uint8', scale, min: lo } };
}

/**
 * Quantizes a model's encoded weights, as `model.save` hands them to an IO handler: every
 * float32 entry of two or more dimensions becomes `{..., dtype: 'float32', quantization}` with
 * its values stored quantized; 1-D float32 (biases, batch norm), int32 and bool entries are
 * copied unchanged.
 *
 * @param specs the manifest entries, in the order of `data`.
 * @param data the weights, little-endian, concatenated in `specs` order.
 * @returns the new entries (same names, shapes and dtypes) and the new weight bytes.
 * @throws {Error} for an entry already quantized, of another dtype (string), or non-finite
 *   values; or when `data` is shorter than `specs` need.
 * @example
 * const q = quantizeWeights(artifacts.weightSpecs, weightData, 'uint8');
 * tf.io.decodeWeights(q.data.buffer, q.specs); // float32 tensors again, within scale / 2
 */
export function quantizeWeights(
  specs: readonly tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
  dtype: QuantizeDtype,
): { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    const perValue = PLAIN_BYTES[spec.dtype];
    if (spec.quantization !== undefined || perValue === undefined) {
      throw new Error(
        `cannot quantize weight ${spec.name}: ${spec.quantization ? 'already quantized' : `dtype ${spec.dtype}`}`,
      );
    }
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const end = offset + size * perValue;
    if (end > data.byteLength) {
      throw new Error(
        `weight ${spec.name} needs bytes ${offset}..${end}, data has ${data.byteLength}`,
      );
    }
    if (spec.dtype === 'float32' && spec.shape.length >= 2) {
      const values = new Float32Array(data.slice(offset, end));
      let q: ReturnType<typeof quantizeValues>;
      try {
        q = quantizeValues(values, dtype);
      } catch (error) {
        throw new Error(`cannot quantize weight ${spec.name}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      parts.push(q.bytes);
      out.push({
        name: spec.name,
        shape: [...spec.shape],
        dtype: 'float32',
        quantization: q.quantization,
      });
    } else {
      parts.push(new Uint8Array(data, offset, end - offset));
      out.push({ ...spec, shape: [...spec.shape] });
    }
    offset = end;
  }
  return { specs: out, data: concatBytes(parts) };
}

/**
 * Size of a model's weights stored unquantized (`model.save`'s weight file), bytes: 4 per
 * float32 or int32 value, 1 per bool.
 * @example
 * weightBytes(buildLeNet({ seed: 1 })); // 177704
 */
export function weightBytes(model: tf.LayersModel): number {
  let total = 0;
  for (const w of model.weights) {
    total += (PLAIN_BYTES[w.dtype] ?? 4) * w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
  }
  return total;
}

/** Sizes before and after {@link applyQuantization}, bytes. */
export interface QuantizationSizes {
  /** The weights unquantized, as {@link weightBytes}. */
  readonly float32Bytes: number;
  /** The weights quantized: the weight file {@link saveModel} writes with the same dtype. */
  readonly bytes: number;
}

/**
 * Replaces every weight of `model`, in place, by its quantize-then-dequantize round trip: the
 * values `loadModel` returns for the model saved with `{ quantize: dtype }`, bit for bit (the
 * decoding is `tf.io.decodeWeights` itself). Lets `train` measure the accuracy of the weights it
 * will ship before saving them. Idempotent for `float16`; a second `uint8` pass finds the same
 * grid, moving values by float32 rounding only (measured on ResNet-18: at most 1.5e-8).
 *
 * Tensors: creates and disposes its own; `tf.memory().numTensors` is unchanged afterwards.
 * @throws {Error} for non-finite weights (nothing is changed then).
 * @example
 * const sizes = applyQuantization(model, 'uint8'); // { float32Bytes: 86488616, bytes: 21622154 }
 * const acc = (await evaluateClassifier(model, test)).acc;
 */
export function applyQuantization(model: tf.LayersModel, dtype: QuantizeDtype): QuantizationSizes {
  const weights = model.weights;
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  weights.forEach((w, i) => {
    const values = w.read().dataSync();
    parts.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    // Index names: two layers may hold weights of the same name.
    specs.push({ name: String(i), shape: w.shape.map((d) => d ?? 1), dtype: w.dtype });
  });
  const plain = concatBytes(parts);
  const float32Bytes = plain.byteLength;
  const quantized = quantizeWeights(specs, plain.buffer, dtype);
  const decoded = tf.io.decodeWeights(bufferOf(quantized.data), quantized.specs);
  try {
    weights.forEach((w, i) => {
      const t = decoded[String(i)];
      if (t === undefined) throw new Error(`weight ${w.name} was not decoded`);
      w.write(t);
    });
  } finally {
    tf.dispose(decoded);
  }
  return { float32Bytes, bytes: quantized.data.byteLength };
}

/**
 * The parts one after another in a fresh buffer of their own (offset 0, unlike `Buffer.concat`,
 * whose small results share Node's pool).
 */
function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.byteLength;
  }
  return joined;
}

/** The bytes of `a` as an ArrayBuffer of their own (no copy when `a` spans its buffer). */
export function bufferOf(a: Uint8Array): ArrayBuffer {
  return a.byteOffset === 0 &&
    a.byteLength === a.buffer.byteLength &&
    a.buffer instanceof ArrayBuffer
    ? a.buffer
    : a.slice().buffer;
}

/**
 * The float16 bit pattern nearest to `v` (ties to even), overflow clamped to ±65504 rather than
 * infinity (a clamped weight beats an infinite one), underflow to ±0 through the subnormals.
 * `v` must be finite.
 */
export function toFloat16Bits(v: number): number {
  F32[0] = v;
  const x = U32[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp >= 31) return sign | FLOAT16_MAX_BITS;
  if (exp <= 0) {
    // Subnormal: the implicit leading 1 joins the mantissa, shifted right by 14 - exp bits.
    if (exp < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - exp;
    let half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa rightly bumps the exponent.
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | Math.min(half, FLOAT16_MAX_BITS);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

function littleEndian16(values: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, values[i] ?? 0, true);
  return bytes;
}
