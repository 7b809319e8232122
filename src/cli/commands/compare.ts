import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { backendOf, compareTable, type ComparedModel } from '../../core/commands/compare.ts';
import { isUserError } from '../../errors.ts';
import { BYTES_PER_MB, translator } from '../../core/i18n.ts';
import { renderTable } from '../../imaging/table.ts';
import { initBackend } from '../../ml/backend.ts';
import { ModelRegistry } from '../../ml/registry.ts';
import { profileModel } from '../../ml/stats.ts';
import { formatTextTable } from '../text-table.ts';
import { latencyOptions, profileOptions, type ProfileFlags } from './arch.ts';

/**
 * One model of `compare --json`; the accuracy figures are `meta.json`'s, as they are, and so is
 * `quantization` (`{dtype, float32TestAccuracy, float32Bytes, bytes}`, null for float32
 * weights). `weightFileMB` is decimal (1 MB = 1,000,000 bytes).
 */
function modelJson(m: ComparedModel, error?: unknown): Record<string, unknown> {
  const p = m.profile;
  return {
    id: m.meta.id,
    architecture: m.meta.architecture,
    dataset: m.meta.dataset,
    testAccuracy: m.meta.testAccuracy ?? null,
    testSamples: m.meta.testSamples ?? null,
    quantization: m.meta.quantization ?? null,
    ...(p
      ? {
          params: p.stats.params.total,
          trainableParams: p.stats.params.trainable,
          nonTrainableParams: p.stats.params.nonTrainable,
          macs: p.stats.macs,
          flops: p.stats.flops,
          weightFileBytes: p.weightFileBytes,
          weightFileMB: p.weightFileBytes / BYTES_PER_MB,
          msPerImage: p.latency.msPerImage,
          imagesPerSecond: p.latency.imagesPerSecond,
        }
      : {
          error: {
            code: isUserError(error) ? error.id : 'internal',
            message: (error as Error).message,
          },
        }),
  };
}

/**
 * `compare`: every installed model side by side: data set, test accuracy (from its `meta.json`),
 * parameters, MACs, weight files' size (quantized weights marked, their float32 accuracy in a
 * footnote), and speed measured here (ms/image at batch 1, images/s
 * over a batch of 1,000). A model that cannot be loaded is reported and the exit status is 1.
 */
export function registerCompare(program: Command, config: Config): void {
  profileOptions(
    program
      .command('compare')
      .description('every installed model: accuracy, parameters, MACs, size and measured speed'),
  ).action(async (flags: ProfileFlags) => {
    await initBackend({ backend: config.TFJS_BACKEND });
    const registry = ModelRegistry.fromConfig(config);
    try {
      const models: ComparedModel[] = [];
      const errors = new Map<string, unknown>();
      for (const meta of await registry.list()) {
        try {
          models.push({
            meta,
            profile: await profileModel(await registry.get(meta.id), latencyOptions(flags)),
          });
        } catch (e) {
          errors.set(meta.id, e);
          models.push({ meta });
        }
      }
      const table = compareTable(models, translator('en'), 'en');
      if (flags.png) await writeFile(flags.png, await renderTable(table));
      if (flags.json) {
        const first = models.find((m) => m.profile)?.profile;
        const json = {
          backend: backendOf(models),
          throughputImages: first?.latency.throughputImages ?? flags.batch,
          models: models.map((m) => modelJson(m, errors.get(m.meta.id))),
        };
        console.log(JSON.stringify(json));
      } else {
        console.log(formatTextTable(table) + (flags.png ? `\n→ ${flags.png}` : ''));
        for (const [id, e] of errors) console.error(`error: ${id}: ${(e as Error).message}`);
      }
      if (errors.size > 0) process.exitCode = 1;
    } finally {
      await registry.dispose();
    }
  });
}
