/**
 * A labelled image classification split held in memory, as every dataset loader returns it.
 *
 * Pixels stay raw bytes (0..255): scaling to [0, 1] and building tensors is the trainer's step,
 * so one copy serves float and quantized pipelines alike.
 *
 * @example
 * const { images, labels, count, height, width, channels } = await loadMnistLike('mnist', 'test', dir);
 * const x = tf.tensor4d(images, [count, height, width, channels], 'int32').div(255);
 * const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
 */
export interface Dataset<
  H extends number = number,
  W extends number = number,
  C extends number = number,
> {
  /** Pixels as uint8, row-major `[count, height, width, channels]` (channels interleaved, HWC). */
  readonly images: Uint8Array;
  /** Class index of each image, `[count]`, each `< classNames.length`. */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
  readonly height: H;
  readonly width: W;
  readonly channels: C;
  /** Display name of each class; the index is the label value. */
  readonly classNames: readonly string[];
}

/** Which part of a dataset to load. */
export type DatasetSplit = 'train' | 'test';

/** The datasets the project knows how to locate, download and load. */
export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'cifar-10'] as const;

/** One of {@link DATASET_NAMES}; also the name of its folder under `DATA_DIR`. */
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The grey-scale 28x28 datasets stored as IDX files. */
export type MnistLikeName = Extract<DatasetName, 'mnist' | 'fashion-mnist'>;
