import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isUserError } from '../../errors.ts';
import { logger } from '../../logger.ts';
import type { ModelMeta } from '../../ml/model-meta.ts';
import { preprocessForModel, type ImageLimits } from '../../ml/preprocess/for-model.ts';
import type { LabelledImages } from '../train.ts';

/** Limits for the photos of an image folder: those of an upload by default (20 MB, 40 MP). */
const DEFAULT_LIMITS: ImageLimits = { maxBytes: 20_000_000, maxPixels: 40_000_000 };

/** Labelled photos read by {@link loadImageFolder}. */
export interface ImageFolderData extends LabelledImages {
  /** SHA-256 (hex) of the images and labels as stored in memory, for a checkpoint fingerprint. */
  readonly digest: string;
  /** Files the photo pipeline refused (not an image, no ink...), relative to the folder. */
  readonly skipped: readonly string[];
}

/**
 * Reads labelled photos in the ImageFolder layout (torchvision's `ImageFolder`, Keras'
 * `image_dataset_from_directory`): `<dir>/<class name>/<file>`, each class name one of
 * `classNames`. Each photo goes through the model's pipeline (`preprocessForModel`), as a
 * student's upload would, and is stored as uint8 bytes `[height, width, channels]`, 0..255
 * (the pipeline's [0, 1] values times 255), so that it can join a data set split. Files are taken
 * in name order, so the same folder gives the same bytes and digest. Files the pipeline refuses
 * with a user error are skipped with a log line.
 *
 * @param meta the model's `preprocess` and `inputShape` `[height, width, channels]`.
 * @throws {Error} naming the folder when a sub-folder is not a class name, or no photo is usable.
 */
export async function loadImageFolder(
  dir: string,
  classNames: readonly string[],
  meta: Pick<ModelMeta, 'preprocess' | 'inputShape'>,
  limits: ImageLimits = DEFAULT_LIMITS,
): Promise<ImageFolderData> {
  const [height, width, channels] = meta.inputShape;
  const per = height * width * channels;
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const images: number[][] = [];
  const labels: number[] = [];
  const skipped: string[] = [];
  for (const name of entries) {
    const label = classNames.indexOf(name);
    if (label < 0) {
      throw new Error(
        `${path.join(dir, name)}: "${name}" is not a class of the data set (${classNames.join(', ')})`,
      );
    }
    const files = (await readdir(path.join(dir, name), { withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => e.name)
      .sort();
    for (const file of files) {
      const bytes = await readFile(path.join(dir, name, file));
      try {
        const input = await preprocessForModel(meta, bytes, limits);
        if (input.data.length !== per) throw new Error(`pipeline gave ${input.data.length} values`);
        images.push(Array.from(input.data, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)));
        labels.push(label);
      } catch (e) {
        if (!isUserError(e)) throw e;
        skipped.push(path.join(name, file));
        logger.warn({ file: path.join(dir, name, file), id: e.id }, 'extra training photo skipped');
      }
    }
  }
  if (labels.length === 0) throw new Error(`${dir}: no usable labelled photo`);
  const data = new Uint8Array(labels.length * per);
  images.forEach((img, i) => data.set(img, i * per));
  const labelBytes = Uint8Array.from(labels);
  const digest = createHash('sha256').update(data).update(labelBytes).digest('hex');
  return {
    images: data,
    labels: labelBytes,
    count: labels.length,
    height,
    width,
    channels,
    digest,
    skipped,
  };
}

/**
 * `base` followed by `extra` repeated `repeat` times, as one set (the same image size is assumed;
 * a mismatch throws).
 * @throws {Error} when the image sizes differ.
 */
export function appendLabelled<T extends LabelledImages>(
  base: T,
  extra: LabelledImages,
  repeat: number,
): T {
  const per = base.height * base.width * base.channels;
  if (extra.height * extra.width * extra.channels !== per || extra.height !== base.height) {
    throw new Error(
      `extra images are ${extra.height}x${extra.width}x${extra.channels}, the data set's ${base.height}x${base.width}x${base.channels}`,
    );
  }
  const count = base.count + extra.count * repeat;
  const images = new Uint8Array(count * per);
  const labels = new Uint8Array(count);
  images.set(base.images.subarray(0, base.count * per));
  labels.set(base.labels.subarray(0, base.count));
  for (let r = 0; r < repeat; r++) {
    const at = base.count + r * extra.count;
    images.set(extra.images.subarray(0, extra.count * per), at * per);
    labels.set(extra.labels.subarray(0, extra.count), at);
  }
  return { ...base, images, labels, count };
}
