/**
 * A classifier's figures on a labelled test set: top-1 accuracy, accuracy per class, the
 * confusion matrix, and the time to classify 1,000 images here. Batches are predicted one at a
 * time with a pause between them, so a bot evaluating a student's model keeps answering others.
 */
import * as tf from '@tensorflow/tfjs';

/** Labelled images, as the data set loaders give them. */
export interface LabelledImages {
  /** uint8 pixels, row-major `[count, height, width, channels]`. */
  readonly images: Uint8Array;
  /** Class index of each image, `[count]`. */
  readonly labels: Uint8Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly classNames: readonly string[];
}

/** Options of {@link evaluateClassifier}. */
export interface EvaluateOptions {
  /** Images per prediction (default 250). */
  readonly batchSize?: number;
  /** Pixel scaling: `x * scale + offset` (default 1/255 and 0: the lab's `/255`). */
  readonly scale?: number;
  readonly offset?: number;
  /** Evaluate only the first `limit` images (default all). */
  readonly limit?: number;
  /** Called after each batch with the images done so far. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

/** The figures of one evaluation. */
export interface Evaluation {
  readonly count: number;
  /** Top-1 accuracy, fraction. */
  readonly accuracy: number;
  /** Accuracy of each class (recall), fraction; NaN for a class with no images. */
  readonly perClass: readonly number[];
  /** `confusion[true][predicted]` counts. */
  readonly confusion: readonly (readonly number[])[];
  /** Milliseconds to classify 1,000 images (prediction only, this machine's backend). */
  readonly msPer1000: number;
}

/**
 * Classifies every image of `set` with `model` (argmax of its output) and compares with the
 * labels.
 *
 * @param model outputs `[batch, classes]` for `[batch, height, width, channels]` float32 inputs.
 * @throws {Error} when the model's input shape differs from the images' (checked first), or
 *   `AbortError` when `signal` aborts.
 */
export async function evaluateClassifier(
  model: tf.LayersModel,
  set: LabelledImages,
  options: EvaluateOptions = {},
): Promise<Evaluation> {
  const want = model.inputs[0]?.shape.slice(1) ?? [];
  const have = [set.height, set.width, set.channels];
  if (want.length !== 3 || want.some((d, i) => d !== have[i])) {
    throw new Error(
      `the model's input ${want.join('×')} differs from the images' ${have.join('×')}`,
    );
  }
  const classes = set.classNames.length;
  const batch = options.batchSize ?? 250;
  const scale = options.scale ?? 1 / 255;
  const offset = options.offset ?? 0;
  const total = Math.min(set.count, options.limit ?? set.count);
  const pixels = set.height * set.width * set.channels;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  let ms = 0;
  for (let start = 0; start < total; start += batch) {
    options.signal?.throwIfAborted();
    const n = Math.min(batch, total - start);
    const t0 = performance.now();
    const predicted = tf.tidy(() => {
      const x = tf
        .tensor4d(
          set.images.subarray(start * pixels, (start + n) * pixels),
          [n, set.height, set.width, set.channels],
          'int32',
        )
        .toFloat()
        .mul(scale)
        .add(offset);
      return tf.argMax(model.predict(x) as tf.Tensor2D, -1);
    });
    const labels = await predicted.data();
    ms += performance.now() - t0;
    predicted.dispose();
    for (let i = 0; i < n; i++) {
      const truth = set.labels[start + i] ?? 0;
      const guess = labels[i] ?? 0;
      const row = confusion[truth];
      if (row && guess < classes) row[guess] = (row[guess] ?? 0) + 1;
      if (truth === guess) correct += 1;
    }
    options.onProgress?.(start + n, total);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const perClass = confusion.map((row, i) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return sum === 0 ? Number.NaN : (row[i] ?? 0) / sum;
  });
  return {
    count: total,
    accuracy: total === 0 ? 0 : correct / total,
    perClass,
    confusion,
    msPer1000: total === 0 ? 0 : (ms / total) * 1000,
  };
}
