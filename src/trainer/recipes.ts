import type * as tf from '@tensorflow/tfjs';
import type { PRNG } from 'seedrandom';
import { buildLeNet } from '../ml/architectures/lenet.ts';
import type { ModelMeta } from '../ml/model-meta.ts';
import { augmentDigitBatch } from './augment.ts';
import { addWritingVariant } from './digit-variants.ts';
import { buildDigitOutliers } from './outliers.ts';
import type { BatchFiller, LabelledImages, OutlierSet } from './train.ts';

/** Everything `train <id>` needs to know about one shipped model. */
export interface Recipe {
  readonly id: string;
  readonly architecture: string;
  readonly dataset: 'mnist' | 'fashion-mnist' | 'cifar-10';
  readonly preprocess: ModelMeta['preprocess'];
  readonly build: (seed: number) => tf.LayersModel;
  readonly defaults: {
    readonly epochs: number;
    readonly batchSize: number;
    readonly learningRate: number;
  };
  /** Augmenting batch filler, when the recipe augments. */
  readonly augment?: (data: LabelledImages) => BatchFiller;
  /** Learning rate of each epoch from the base rate. */
  readonly schedule: (base: number, epoch: number, epochs: number) => number;
  /** Outlier Exposure set, when the recipe trains with one (see `TrainOptions.outliers`). */
  readonly outliers?: (dataDir: string) => Promise<OutlierSet>;
  /** Whether `train` calibrates a "not one of the classes" criterion (digit models). */
  readonly calibrateOod?: boolean;
}

/** Cosine decay from `base` to 5% of it over the run (Loshchilov & Hutter 2017, without restarts). */
export function cosineSchedule(base: number, epoch: number, epochs: number): number {
  const t = epochs <= 1 ? 0 : epoch / (epochs - 1);
  return base * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** Affine distortions, then continental writing variants of 1 and 7 (`digit-variants.ts`). */
const digitAugment =
  (data: LabelledImages): BatchFiller =>
  (indices, out, rng: PRNG) => {
    augmentDigitBatch(data.images, data.width, indices, out, rng);
    const area = data.width * data.height;
    for (let k = 0; k < indices.length; k++) {
      const label = data.labels[indices[k] ?? 0] ?? 0;
      addWritingVariant(out.subarray(k * area, (k + 1) * area), data.width, label, rng);
    }
  };

/** The models `train` knows, by id. */
export const RECIPES: Readonly<Record<string, Recipe>> = {
  'lenet-mnist': {
    id: 'lenet-mnist',
    architecture: 'lenet',
    dataset: 'mnist',
    preprocess: 'mnist-digit',
    build: (seed) => buildLeNet({ seed }),
    defaults: { epochs: 20, batchSize: 64, learningRate: 1.5e-3 },
    augment: digitAugment,
    schedule: cosineSchedule,
    outliers: (dataDir) => buildDigitOutliers(dataDir, 4000, 8),
    calibrateOod: true,
  },
};
