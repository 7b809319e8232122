import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../../config.ts';
import { initBackend } from '../../ml/backend.ts';
import { loadModel, MODEL_JSON, saveModel } from '../../ml/model-io.ts';
import { META_FILE, readModelMeta, type ModelMeta } from '../../ml/model-meta.ts';
import { applyQuantization, QUANTIZE_DTYPES, type QuantizeDtype } from '../../ml/quantize.ts';
import { loadDataset } from '../../trainer/datasets/load.ts';
import { DATASET_NAMES, type DatasetName } from '../../trainer/datasets/types.ts';
import { evaluateClassifier } from '../../trainer/train.ts';

/** commander parser for `--dtype`. */
export function parseQuantizeDtype(value: string): QuantizeDtype {
  if (!(QUANTIZE_DTYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${QUANTIZE_DTYPES.join(', ')}`);
  }
  return value as QuantizeDtype;
}

/**
 * The files of a model folder other than the model itself (`model.json`, the weight files its
 * manifest lists) and `meta.json`: `history.json`, `history.png`..., name → bytes, to be written
 * back beside the re-saved model.
 */
async function companionFiles(dir: string): Promise<Record<string, Uint8Array>> {
  const json = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as {
    weightsManifest?: { paths?: string[] }[];
  };
  const model = new Set([
    MODEL_JSON,
    META_FILE,
    ...(json.weightsManifest ?? []).flatMap((g) => g.paths ?? []),
  ]);
  const files: Record<string, Uint8Array> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile() && !model.has(entry.name)) {
      files[entry.name] = await readFile(path.join(dir, entry.name));
    }
  }
  return files;
}

/**
 * `quantize <model>`: stores a trained model's weights quantized, as `train` does by itself for
 * weights over 10 MB. Measures the test accuracy before and after, and records both with the
 * sizes in `meta.json` (`testAccuracy` becomes that of the quantized weights). The folder is
 * replaced atomically; its other files (`history.json`...) are kept.
 */
export function registerQuantize(program: Command, config: Config): void {
  program
    .command('quantize')
    .description(
      "store a trained model's weights quantized (uint8: a quarter of the size, float16: half), measuring its test accuracy before and after",
    )
    .argument('<model>', 'model id (a folder of the models folder)')
    .option('--dtype <dtype>', QUANTIZE_DTYPES.join(' or '), parseQuantizeDtype, 'uint8')
    .option('--data-dir <dir>', 'data folder holding the test set', undefined)
    .action(async (id: string, flags: { dtype: QuantizeDtype; dataDir?: string }) => {
      const dir = path.join(config.MODELS_DIR, id);
      const meta = await readModelMeta(dir);
      if (meta.quantization) {
        throw new Error(`model "${id}" is already stored as ${meta.quantization.dtype}`);
      }
      if (!(DATASET_NAMES as readonly string[]).includes(meta.dataset)) {
        throw new Error(
          `model "${id}" was trained on "${meta.dataset}", which has no test set here (${DATASET_NAMES.join(', ')})`,
        );
      }
      await initBackend({ backend: config.TFJS_BACKEND });
      const test = await loadDataset(
        meta.dataset as DatasetName,
        'test',
        flags.dataDir ?? config.DATA_DIR,
        { sharedDataDir: config.CNN_SHARED_DATA },
      );
      const model = await loadModel(dir);
      try {
        const float32 = (await evaluateClassifier(model, test)).acc;
        const sizes = applyQuantization(model, flags.dtype);
        const quantized = (await evaluateClassifier(model, test)).acc;
        const next: ModelMeta = {
          ...meta,
          testAccuracy: quantized,
          testSamples: test.count,
          quantization: { dtype: flags.dtype, float32TestAccuracy: float32, ...sizes },
        };
        await saveModel(
          model,
          dir,
          { ...(await companionFiles(dir)), [META_FILE]: JSON.stringify(next, null, 2) + '\n' },
          { quantize: flags.dtype },
        );
        const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;
        console.log(
          `${id}: ${flags.dtype}, ${sizes.bytes} bytes (float32 ${sizes.float32Bytes}); test accuracy on ${test.count} images ${pct(quantized)} (float32 ${pct(float32)})`,
        );
      } finally {
        model.dispose();
      }
    });
}
