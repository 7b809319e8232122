import { describe, expect, it } from 'vitest';
import { settingsDifference, type TrainingSettings } from '../../../src/trainer/job-spec.ts';

const base: TrainingSettings = {
  model: 'lenet-mnist',
  dataset: 'mnist',
  epochs: 3,
  batchSize: 64,
  learningRate: 0.0015,
  schedule: 'cosine',
  patience: 0,
  seed: 42,
  validationSplit: 0.2,
  workers: 1,
  augment: true,
  outliers: true,
};
const a = 'a7757ba1e6a812643526bfc9900170695627273302f69665f9aa7af8f48302a4';
const b = '0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c';

describe('settingsDifference (why a checkpoint of other settings is not resumed)', () => {
  it('names the starting weights of both runs by digest, or fresh ones', () => {
    expect(settingsDifference({ ...base, initFrom: a }, { ...base, initFrom: b })).toBe(
      'it started from the weights <sha256 a7757ba1e6a8>, this run from the weights <sha256 0b1c2d3e4f5a>',
    );
    expect(settingsDifference(base, { ...base, initFrom: b })).toBe(
      'it started from fresh weights, this run from the weights <sha256 0b1c2d3e4f5a>',
    );
    expect(settingsDifference({ ...base, initFrom: a }, base)).toBe(
      'it started from the weights <sha256 a7757ba1e6a8>, this run from fresh weights',
    );
  });

  it('names every other setting that differs with both values, and nothing for equal settings', () => {
    expect(settingsDifference(base, { ...base })).toBe('');
    expect(settingsDifference(base, { ...base, epochs: 8, learningRate: 1e-4 })).toBe(
      'epochs 3 (now 8); learningRate 0.0015 (now 0.0001)',
    );
    expect(settingsDifference({ ...base, extraData: a }, base)).toBe('other extra data');
  });
});
