import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { initBackend } from '../../ml/backend.ts';
import { loadModel, saveModel } from '../../ml/model-io.ts';
import { META_FILE, readModelMeta } from '../../ml/model-meta.ts';
import { calibrateOod } from '../../trainer/calibrate-ood.ts';
import { loadDataset } from '../../trainer/datasets/load.ts';
import { RECIPES } from '../../trainer/recipes.ts';
import { splitValidation } from '../../trainer/train.ts';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { readFile } from 'node:fs/promises';

/**
 * `calibrate <model>`: re-fits a trained digit model's "not a digit" criterion without
 * retraining (after a change to the photo pipeline, say), on the same validation split `train`
 * held out (same seed).
 */
export function registerCalibrate(program: Command, config: Config): void {
  program
    .command('calibrate')
    .description(
      're-calibrate the "not confidently one of the classes" criterion of a trained model',
    )
    .argument('<model>', 'model id')
    .option('--data-dir <dir>', 'data folder', undefined)
    .action(async (id: string, flags: { dataDir?: string }) => {
      const recipe = RECIPES[id];
      if (!recipe?.calibrateOod) throw new Error(`model "${id}" has no calibrated criterion`);
      await initBackend({ backend: config.TFJS_BACKEND });
      const dir = path.join(config.MODELS_DIR, id);
      const meta = await readModelMeta(dir);
      const model = await loadModel(dir);
      const dataDir = flags.dataDir ?? config.DATA_DIR;
      const locate = { sharedDataDir: config.CNN_SHARED_DATA };
      const train = await loadDataset(recipe.dataset, 'train', dataDir, locate);
      // The validation split the training run held out, drawn again from its seed.
      const seed = meta.training?.seed ?? 42;
      const valIdx = splitValidation(
        train.count,
        meta.training?.validationSplit ?? 0.2,
        seedrandom(String(seed)),
      ).validation;
      meta.ood = await calibrateOod(model, train, valIdx, dataDir, locate);
      const history = await readFile(path.join(dir, 'history.json')).catch(() => undefined);
      // Stored as it was: quantized weights stay quantized, and quantizing them again finds the
      // same grid points (up to float32 rounding).
      await saveModel(
        model,
        dir,
        {
          [META_FILE]: JSON.stringify(meta, null, 2) + '\n',
          ...(history ? { 'history.json': history } : {}),
        },
        meta.quantization ? { quantize: meta.quantization.dtype } : {},
      );
      console.log(
        JSON.stringify(
          {
            minProbability: meta.ood.minProbability,
            ...meta.ood.calibration,
          },
          null,
          2,
        ),
      );
      model.dispose();
    });
}
